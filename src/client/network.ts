/**
 * Browser `online` / `offline` events: offline stops retries (no hammering a dead network),
 * online retries at once. Node has no such events; tests pass their own EventTarget.
 */

/** Anything with online/offline events: `window` in a browser, an EventTarget in tests. */
export interface NetworkEvents {
  addEventListener(type: 'online' | 'offline', listener: () => void): void;
  removeEventListener(type: 'online' | 'offline', listener: () => void): void;
}

export interface NetworkHandlers {
  online(): void;
  offline(): void;
}

/** `globalThis` when it has events (browsers, workers), otherwise null. */
export function defaultNetwork(): NetworkEvents | null {
  const global: unknown = globalThis;
  return isNetworkEvents(global) ? global : null;
}

/** Starts listening; returns the function that stops. */
export function watchNetwork(target: NetworkEvents, handlers: NetworkHandlers): () => void {
  const online = () => handlers.online();
  const offline = () => handlers.offline();
  target.addEventListener('online', online);
  target.addEventListener('offline', offline);
  return () => {
    target.removeEventListener('online', online);
    target.removeEventListener('offline', offline);
  };
}

function isNetworkEvents(value: unknown): value is NetworkEvents {
  if (typeof value !== 'object' || value === null) return false;
  const target = value as Partial<Record<keyof NetworkEvents, unknown>>;
  return (
    typeof target.addEventListener === 'function' &&
    typeof target.removeEventListener === 'function'
  );
}
