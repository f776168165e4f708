import { useEffect, useState } from 'preact/hooks';
import { perFrame } from './frame.js';
import { clearSession, readSession, saveSession, type Session } from './session.js';

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
  const [bump] = useState(() => perFrame(() => setFrame((n) => n + 1)));
  return bump;
}

/**
 * A page's sign-in state, shared by the dashboard and the console: the session (from the
 * `#token=` fragment or sessionStorage), and why the last token did not work, if it did not.
 */
export function useSession(storageKey: string) {
  const [session, setSession] = useState<Session | null>(() => readSession(storageKey));
  const [problem, setProblem] = useState<string | null>(null);
  return {
    session,
    problem,
    signIn: (next: Session): void => {
      saveSession(storageKey, next);
      setProblem(null);
      setSession(next);
    },
    /** Forgets the session; `why` is shown above the sign-in form. */
    signOut: (why: string | null): void => {
      clearSession(storageKey);
      setProblem(why);
      setSession(null);
    },
    /** Keeps the form up with this problem (a token rejected before signing in). */
    refuse: setProblem,
  };
}
