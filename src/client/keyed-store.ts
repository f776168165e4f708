/**
 * The current content of a state channel (`positions:<account>`): one value per key, from the
 * snapshot sent on every (re)subscribe and the keyed events after it (`data: null` deletes).
 */
import { Emitter, type Listenable } from './events.js';
import type { ChannelSubscription, Subscription } from './subscription.js';

export type StoreChange<T> =
  /** The whole content was replaced (first subscribe, and after every reconnect). */
  | { readonly kind: 'snapshot'; readonly seq: number; readonly entries: ReadonlyMap<string, T> }
  | {
      readonly kind: 'set';
      readonly seq: number;
      readonly key: string;
      readonly value: T;
      readonly previous: T | undefined;
    }
  | {
      readonly kind: 'delete';
      readonly seq: number;
      readonly key: string;
      readonly previous: T | undefined;
    };

export interface KeyedStoreEvents<T> {
  change: [change: StoreChange<T>];
}

export interface KeyedStore<T = unknown> extends Listenable<KeyedStoreEvents<T>> {
  readonly channel: string;
  /** The subscription feeding the store (its state says whether the content is live). */
  readonly subscription: Subscription<T | null>;
  /** True once a snapshot has arrived. */
  readonly ready: boolean;
  readonly size: number;
  get(key: string): T | undefined;
  /** The current entries (a live read-only view). */
  entries(): ReadonlyMap<string, T>;
  /** Ends the subscription. */
  close(): void;
}

/** The positions of one account. */
export type PositionsStore<T = unknown> = KeyedStore<T>;

export class StateStore<T> extends Emitter<KeyedStoreEvents<T>> implements KeyedStore<T> {
  readonly channel: string;
  private readonly map = new Map<string, T>();
  private readyValue = false;

  constructor(readonly subscription: ChannelSubscription<T | null>) {
    super();
    this.channel = subscription.channel;
    subscription.on('snapshot', (snapshot) => {
      this.map.clear();
      for (const { key, data } of snapshot.entries) if (data !== null) this.map.set(key, data);
      this.readyValue = true;
      this.emit('change', { kind: 'snapshot', seq: snapshot.seq, entries: this.map });
    });
    subscription.on('event', (event) => {
      if (event.key === null || !this.readyValue) return;
      const previous = this.map.get(event.key);
      if (event.data === null) {
        if (!this.map.delete(event.key)) return;
        this.emit('change', { kind: 'delete', seq: event.seq, key: event.key, previous });
      } else {
        this.map.set(event.key, event.data);
        this.emit('change', {
          kind: 'set',
          seq: event.seq,
          key: event.key,
          value: event.data,
          previous,
        });
      }
    });
  }

  get ready(): boolean {
    return this.readyValue;
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string): T | undefined {
    return this.map.get(key);
  }

  entries(): ReadonlyMap<string, T> {
    return this.map;
  }

  close(): void {
    this.subscription.unsubscribe();
  }
}
