/**
 * The trader's risk alerts on the page: the `risk:<account>` subscriptions, the AlertBook kept
 * in this browser, and acknowledgements through the gateway
 * (docs/client.md#acknowledging-risk-alerts). The gateway decides what waits: its `unacked`
 * list after every (re)subscribe, and `acked` from anyone on any device; the book only keeps
 * what it said.
 */
import {
  AckError,
  type AlertAckInfo,
  type ArchonClient,
  type ChannelEvent,
  type Subscription,
  type UnackedAlerts,
} from '../../../src/client/index.js';
import { AlertBook, alertId, bookKey, type Alert, type Closed } from './alerts.js';

/** The last click on an alert's Acknowledge button, while it has something to say. */
export type AckAttempt =
  | { readonly kind: 'sending' }
  /** Not acknowledged: `text` says why; `untilConnected` notes go once connected again. */
  | { readonly kind: 'failed'; readonly text: string; readonly untilConnected: boolean };

type Data = Record<string, unknown>;

/** Waiting alerts shown by number only, per list at most. */
const MAX_UNNAMED = 100;

export interface RiskOptions {
  readonly client: ArchonClient;
  /** The signed-in user (JWT `sub`): the book is kept per user, and the page's own warnings
   * are acknowledged in their name. */
  readonly user: string;
  readonly accounts: readonly string[];
  /** An alert arrived (the page's "last update"). */
  readonly received: () => void;
  readonly changed: () => void;
}

export class RiskAlerts {
  readonly book: AlertBook;
  /** Per alert id: an acknowledgement on its way, or why the last one did not go through. */
  readonly attempts = new Map<string, AckAttempt>();
  /** Per risk channel, the seqs its last `unacked` list named, until it resubscribes: an alert
   * read from history afterwards waits only if listed. */
  private readonly waiting = new Map<string, { epoch: string; seqs: Set<number> }>();
  private readonly unwatchStorage: () => void;

  constructor(private readonly options: RiskOptions) {
    this.book = new AlertBook(bookKey(options.user), new Set(options.accounts));
    // What another tab of this user learned (an acknowledgement, an alert) shows here too.
    const onStorage = (e: StorageEvent) => {
      if (e.key !== bookKey(options.user)) return;
      this.book.reload();
      options.changed();
    };
    addEventListener('storage', onStorage);
    this.unwatchStorage = () => removeEventListener('storage', onStorage);
  }

  /**
   * Subscribes `risk:<account>`, resuming from the last alert this browser got, so one
   * published while the page was closed is replayed from the gateway's alert history.
   */
  subscribe(account: string): Subscription<Data> {
    const channel = `risk:${account}`;
    const since = this.book.resumeFrom(channel);
    const sub = this.options.client.subscribe<Data>(
      channel,
      (event) => this.onAlert(account, event),
      since ? { since } : {},
    );
    sub.on('state', (state) => {
      if (state === 'subscribing') this.waiting.delete(channel);
    });
    sub.on('unacked', (list) => this.onUnacked(account, list));
    sub.on('acked', (ack) => this.onAcked(ack));
    return sub;
  }

  /** Subscribed: from here on, a reload must not miss what comes next. */
  subscribed(sub: Subscription<Data>): void {
    if (!sub.position) return;
    this.book.setResume(sub.channel, sub.position);
    this.book.save();
  }

  /**
   * The Acknowledge button: an alert of the gateway is acknowledged there for every user of
   * the account, and stops waiting here when the gateway says so; the page's own warnings are
   * acknowledged here only.
   */
  acknowledge(id: string): void {
    const alert = this.book.find(id);
    if (!alert || alert.closed !== null || this.attempts.get(id)?.kind === 'sending') return;
    if (alert.epoch === null || alert.seq === null) {
      this.close(id, { kind: 'acknowledged', at: Date.now(), by: this.options.user });
      return;
    }
    this.attempts.set(id, { kind: 'sending' });
    this.options.changed();
    void this.options.client.ack(alert.channel, alert.epoch, alert.seq).then(
      (ack) => this.onAcked(ack),
      (err: unknown) => this.ackFailed(id, err),
    );
  }

  /** Connected again: acknowledging is possible, the notes saying it was not go. */
  connected(): void {
    for (const [id, attempt] of this.attempts)
      if (attempt.kind === 'failed' && attempt.untilConnected) this.attempts.delete(id);
  }

  /** Raises the page's own warning that alerts of a channel may be missing: it waits for
   * acknowledgement like an alert and cannot be pushed out. */
  mayBeMissing(channel: string, id: string, text: string): void {
    this.book.add({
      id,
      account: channel.slice('risk:'.length),
      channel,
      epoch: null,
      seq: null,
      ts: Date.now(),
      level: 'warning',
      message: `Risk alerts may be missing. ${text}. Check the risk system directly.`,
      late: false,
      missing: true,
      closed: null,
    });
    this.book.save();
    this.options.changed();
  }

  dispose(): void {
    this.unwatchStorage();
  }

  private onAlert(account: string, event: ChannelEvent<Data>): void {
    this.options.received();
    const alert = toAlert(account, event, event.source !== 'live');
    // Read from history after the list of what waits came: not listed, it no longer waits.
    const listed = this.waiting.get(event.channel);
    if (event.source === 'history' && listed?.epoch === event.epoch && !listed.seqs.has(event.seq))
      alert.closed = { kind: 'acknowledged', at: Date.now(), by: null };
    this.book.add(alert);
    this.book.setResume(event.channel, { epoch: event.epoch, seq: event.seq });
    this.book.save();
    this.options.changed();
  }

  /** The gateway's authority on what waits in a channel's epoch. */
  private onUnacked(account: string, list: UnackedAlerts<Data>): void {
    // `seqs` names every waiting alert; `alerts` holds in full those this page was not given
    // otherwise (docs/protocol.md#unacked). One named but neither here nor in full (the
    // gateway sends the newest 50, or none when the replay budget is spent) still waits:
    // shown by its number rather than not at all.
    const seqs = new Set(list.seqs);
    this.waiting.set(list.channel, { epoch: list.epoch, seqs });
    const waiting = list.alerts.map((a) => toAlert(account, a, true));
    const given = new Set(list.alerts.map((a) => a.seq));
    let unnamed = 0;
    for (const seq of list.seqs) {
      if (given.has(seq) || this.book.find(alertId(list.channel, list.epoch, seq))) continue;
      if (++unnamed > MAX_UNNAMED) break; // a backlog that large is the risk desk's to clear
      waiting.push(
        toAlert(
          account,
          {
            channel: list.channel,
            epoch: list.epoch,
            seq,
            key: null,
            ts: Date.now(),
            data: {
              level: 'alert',
              message: `Risk alert #${seq} waits for acknowledgement (its details were not sent: check the risk system)`,
            },
          },
          true,
        ),
      );
    }
    const at = Date.now();
    if (this.book.reconcile(list.channel, list.epoch, seqs, waiting, at)) this.book.save();
    this.options.changed();
  }

  /** Someone acknowledged an alert (the answer to our `ack`, or anyone's, on any device). */
  private onAcked(ack: AlertAckInfo): void {
    const id = alertId(ack.channel, ack.epoch, ack.seq);
    this.attempts.delete(id);
    this.close(id, { kind: 'acknowledged', at: ack.at, by: ack.by });
  }

  private ackFailed(id: string, err: unknown): void {
    const code = err instanceof AckError ? err.code : 'failed';
    const message = err instanceof Error ? err.message : String(err);
    if (code === 'alert_unknown') {
      // The gateway no longer holds it: nobody can acknowledge it any more.
      this.attempts.delete(id);
      this.close(id, { kind: 'expired', at: Date.now() });
      return;
    }
    this.attempts.set(
      id,
      code === 'not_connected'
        ? {
            kind: 'failed',
            text: 'Not connected: you can acknowledge it once the connection is back.',
            untilConnected: true,
          }
        : { kind: 'failed', text: `Not acknowledged (${code}): ${message}`, untilConnected: false },
    );
    this.options.changed();
  }

  private close(id: string, closed: Closed): void {
    if (this.book.close(id, closed)) this.book.save();
    this.options.changed();
  }
}

/** A risk alert as the book keeps it, from its event or its entry in an `unacked` list. */
function toAlert(account: string, event: Omit<ChannelEvent<Data>, 'source'>, late: boolean): Alert {
  const data = event.data ?? {};
  return {
    id: alertId(event.channel, event.epoch, event.seq),
    account,
    channel: event.channel,
    epoch: event.epoch,
    seq: event.seq,
    ts: typeof data.ts === 'number' ? data.ts : event.ts,
    level: typeof data.level === 'string' ? data.level : 'alert',
    message: typeof data.message === 'string' ? data.message : JSON.stringify(data).slice(0, 300),
    late,
    missing: false,
    closed: null,
  };
}
