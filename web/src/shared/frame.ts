/**
 * Runs `work` at most once per animation frame however often `request` is called: a burst of
 * market data costs one pass, not one per event. Hidden tabs get no animation frames, so there
 * it runs on a timer (the tab title must still count pending alerts).
 */
export function perFrame(work: () => void): () => void {
  let pending = false;
  const run = () => {
    pending = false;
    work();
  };
  return () => {
    if (pending) return;
    pending = true;
    if (document.hidden) setTimeout(run, 250);
    else requestAnimationFrame(run);
  };
}
