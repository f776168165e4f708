/** A tiny typed event emitter: no Node `events`, so the SDK runs in browsers as is. */

/** Event name → listener arguments. */
export type EventMap<E> = { [K in keyof E]: unknown[] };

export type Listener<A extends unknown[]> = (...args: A) => void;

/** The listening half of an emitter: what the public API exposes. */
export interface Listenable<E extends EventMap<E>> {
  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof E>(name: K, listener: Listener<E[K]>): () => void;
  /** Adds a listener that runs once. */
  once<K extends keyof E>(name: K, listener: Listener<E[K]>): () => void;
  off<K extends keyof E>(name: K, listener: Listener<E[K]>): void;
}

export class Emitter<E extends EventMap<E>> implements Listenable<E> {
  private readonly listeners = new Map<keyof E, Set<Listener<never>>>();

  on<K extends keyof E>(name: K, listener: Listener<E[K]>): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(listener);
    return () => this.off(name, listener);
  }

  once<K extends keyof E>(name: K, listener: Listener<E[K]>): () => void {
    const off = this.on(name, (...args: E[K]) => {
      off();
      listener(...args);
    });
    return off;
  }

  off<K extends keyof E>(name: K, listener: Listener<E[K]>): void {
    this.listeners.get(name)?.delete(listener);
  }

  protected emit<K extends keyof E>(name: K, ...args: E[K]): void {
    const set = this.listeners.get(name);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<E[K]>)(...args);
      } catch (err) {
        // A throwing listener must not leave the client half-updated or starve the other
        // listeners; report it the way EventTarget does, outside the emitting call.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}
