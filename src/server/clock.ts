/**
 * Time as a connection's session sees it. The gateway runs on the system clock; a test where
 * time is the subject (an auth timeout, a token expiring, a peer that never finishes its
 * close) passes a manual clock and moves it, instead of sleeping.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `fn` once, `ms` from now; returns what cancels it. Never keeps the process alive. */
  after(ms: number, fn: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};
