import { useEffect, useState } from 'preact/hooks';

/** The current time, refreshed every `everyMs`: for "N s ago" labels and countdowns. */
export function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}

/**
 * Re-renders at most once per animation frame however often `bump` is called: a burst of
 * market data costs one render, not one per event.
 */
export function useFrameRender(): () => void {
  const [, setFrame] = useState(0);
  const [bump] = useState(() => {
    let pending = false;
    return () => {
      if (pending) return;
      pending = true;
      const run = () => {
        pending = false;
        setFrame((n) => n + 1);
      };
      // Hidden tabs get no animation frames: the tab title (pending alerts) must still update.
      if (document.hidden) setTimeout(run, 250);
      else requestAnimationFrame(run);
    };
  });
  return bump;
}
