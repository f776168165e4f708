/**
 * Everything the trader dashboard shows, kept from the SDK's events: the connection and the
 * state of every channel (the page is live only when both are), positions per account,
 * signals, risk alerts (risk.ts: kept in this browser, acknowledged through the gateway) and
 * operator notices. Components read it and re-render when it calls `changed`.
 */
import {
  ArchonClient,
  type ChannelEvent,
  type ClientError,
  type ConnectionState,
  type Gap,
  type PositionsStore,
  StoreBatcher,
  type Subscription,
  type SubscriptionState,
  type Transport,
} from '../../../src/client/index.js';
import type { Alert } from './alerts.js';
import { PositionBook, type PositionData, type PositionRow } from './book.js';
import { RiskAlerts, type AckAttempt } from './risk.js';
import { perFrame } from '../shared/frame.js';

export type { AckAttempt, Alert, PositionData, PositionRow };

export const CLIENT_NAME = 'archon-dashboard/0.1.0';

/** One channel as the page sees it: is it live, and if it failed, why. */
export interface ChannelView {
  state: SubscriptionState;
  problem: string | null;
}

export interface AccountView {
  readonly account: string;
  /** The rows drawn, updated once per frame (book.ts). */
  readonly book: PositionBook;
  ready: boolean;
  /** When this account's positions last changed (snapshot or update). */
  lastUpdate: number | null;
  /** The positions subscription: how old its data is (asOf) and whether it is stale. */
  source: Subscription<PositionData | null> | null;
  readonly positions: ChannelView;
  readonly risk: ChannelView;
}

export type FeedItem =
  | {
      readonly kind: 'signal';
      readonly id: string;
      readonly ts: number;
      readonly data: Record<string, unknown>;
      readonly late: boolean;
    }
  | { readonly kind: 'gap'; readonly id: string; readonly ts: number; readonly text: string };

export interface Notice {
  readonly id: number;
  readonly message: string;
  readonly ts: number;
}

export interface ConnectionView {
  state: ConnectionState;
  /** The answering server, while connected. */
  server: string | null;
  /** Why the page is not connected, in words, when it knows. */
  problem: string | null;
  /** What the connection runs over while connected: `sse` where a proxy blocks WebSockets
   * (docs/client.md#when-websocket-cannot-get-through). */
  transport: Transport | null;
}

const MAX_FEED = 100;
const MAX_NOTICES = 5;

export interface ModelOptions {
  readonly url: string;
  readonly token: string;
  /** The signed-in user (JWT `sub`): alerts are kept per user in this browser. */
  readonly user: string;
  readonly accounts: readonly string[];
  /** Called after every change but a position's value (the page batches renders per frame). */
  readonly changed: () => void;
  /** The server refused the token (4001): the page asks for a new one. */
  readonly refused: (reason: string) => void;
}

export class DashboardModel {
  readonly connection: ConnectionView = {
    state: 'connecting',
    server: null,
    problem: null,
    transport: null,
  };
  readonly accounts: AccountView[];
  readonly signals: ChannelView = { state: 'subscribing', problem: null };
  readonly alerts: RiskAlerts;
  feed: FeedItem[] = [];
  notices: Notice[] = [];
  /** When data (an event or a snapshot) last arrived; null before the first. */
  lastUpdate: number | null = null;
  private readonly client: ArchonClient;
  private noticeIds = 0;

  constructor(private readonly options: ModelOptions) {
    this.client = new ArchonClient({
      url: options.url,
      token: options.token,
      clientName: CLIENT_NAME,
    });
    this.alerts = new RiskAlerts({
      client: this.client,
      user: options.user,
      accounts: options.accounts,
      received: () => {
        this.lastUpdate = Date.now();
      },
      changed: options.changed,
    });
    this.accounts = options.accounts.map((account) => ({
      account,
      book: new PositionBook(),
      ready: false,
      lastUpdate: null,
      source: null,
      positions: { state: 'subscribing', problem: null },
      risk: { state: 'subscribing', problem: null },
    }));
    this.watchConnection();
    for (const view of this.accounts) {
      this.watchPositions(view, this.client.positions<PositionData>(view.account));
      this.watchRisk(view);
    }
    const signals = this.client.subscribe<Record<string, unknown>>('signals', (event) =>
      this.onSignal(event),
    );
    this.watchChannel(signals, this.signals);
  }

  /** When the next connection attempt starts, while waiting to reconnect; null otherwise. */
  get retryAt(): number | null {
    return this.client.nextRetryAt;
  }

  /**
   * Live: connected, and every channel that has not failed for good is live. While a
   * channel resubscribes or recovers after a reconnect, what it shows may be old.
   */
  get live(): boolean {
    return this.connection.state === 'connected' && this.catchingUp().length === 0;
  }

  /** Channels still resubscribing or recovering while connected. */
  catchingUp(): string[] {
    const views: [string, ChannelView][] = [
      ['signals', this.signals],
      ...this.accounts.flatMap((a): [string, ChannelView][] => [
        [`positions:${a.account}`, a.positions],
        [`risk:${a.account}`, a.risk],
      ]),
    ];
    return views
      .filter(([, v]) => v.state === 'subscribing' || v.state === 'recovering')
      .map(([name]) => name);
  }

  dismissNotice(id: number): void {
    this.notices = this.notices.filter((n) => n.id !== id);
    this.options.changed();
  }

  /** "Try now" while waiting for a retry. */
  reconnectNow(): void {
    this.client.connect();
  }

  dispose(): void {
    this.alerts.dispose();
    this.client.close();
  }

  private watchConnection(): void {
    const c = this.connection;
    this.client.on('state', (state) => {
      c.state = state;
      c.transport = this.client.transport;
      if (state === 'connected') {
        c.problem = null;
        this.alerts.connected();
      }
      this.options.changed();
    });
    this.client.on('retry', () => this.options.changed());
    this.client.on('welcome', (welcome) => {
      c.server = welcome.server;
      this.options.changed();
    });
    // A move between WebSocket and HTTP streaming keeps the page connected: no state change.
    this.client.on('transport', (transport) => {
      c.transport = transport;
      this.options.changed();
    });
    this.client.on('disconnect', (info) => {
      c.server = null;
      c.transport = null;
      c.problem =
        info.code === 1006
          ? 'connection lost'
          : `closed by the server: ${info.code}${info.reason ? ` ${info.reason}` : ''}`;
      if (info.code === 4001) {
        this.client.close();
        this.options.refused(info.reason || 'the token was refused or has expired');
      }
      this.options.changed();
    });
    this.client.on('error', (error) => {
      if (error.code === 'closed' || error.code === 'cannot_connect') c.problem = error.message;
      this.options.changed();
    });
    this.client.on('system', (notice) => {
      this.notices = [{ id: ++this.noticeIds, ...notice }, ...this.notices].slice(0, MAX_NOTICES);
      this.options.changed();
    });
    this.client.on('gap', (gap) => this.onGap(gap));
  }

  /** Keeps a channel's view in step with its subscription. */
  private watchChannel(sub: Subscription<unknown>, view: ChannelView, onLive?: () => void): void {
    sub.on('state', (state) => {
      view.state = state;
      if (state === 'live') {
        view.problem = null;
        onLive?.();
      }
      this.options.changed();
    });
    sub.on('error', (error: ClientError) => {
      view.problem = error.message;
      this.options.changed();
    });
  }

  /**
   * Positions arrive coalesced: each event only marks its key, and one pass per animation frame
   * hands the latest values to the rows that show them (docs/web.md#under-a-busy-book). What tells
   * the trader whether the page is live (lastUpdate, the channel's state) is set on arrival,
   * never behind that pass.
   */
  private watchPositions(view: AccountView, store: PositionsStore<PositionData>): void {
    view.source = store.subscription;
    this.watchChannel(store.subscription, view.positions);
    const batcher = new StoreBatcher<PositionData>();
    const draw = perFrame(() => {
      const batch = batcher.take();
      if (batch === null) return;
      const wasReady = view.ready;
      view.ready = true;
      // Only a row coming or going redraws the page; a value redraws its own row.
      if (view.book.apply(batch, store.entries()) || !wasReady) this.options.changed();
    });
    store.on('change', (change) => {
      const now = Date.now();
      this.lastUpdate = now;
      view.lastUpdate = now;
      batcher.add(change);
      draw();
    });
  }

  private watchRisk(view: AccountView): void {
    const sub = this.alerts.subscribe(view.account);
    this.watchChannel(sub, view.risk, () => this.alerts.subscribed(sub));
  }

  private onSignal(event: ChannelEvent<Record<string, unknown>>): void {
    this.lastUpdate = Date.now();
    this.pushFeed({
      kind: 'signal',
      id: `${event.epoch}:${event.seq}`,
      ts: event.ts,
      data: event.data ?? {},
      late: event.source !== 'live',
    });
  }

  private onGap(gap: Gap): void {
    const why: Record<Gap['reason'], string> = {
      'epoch-changed': 'the gateway lost its history (restart)',
      trimmed: 'they are older than the history kept',
      'history-unavailable': 'history could not be read',
      skipped: 'the stream skipped ahead',
    };
    const missed = Math.max(0, gap.before.seq - gap.after.seq - 1);
    const count = gap.reason === 'epoch-changed' || missed === 0 ? 'Some' : String(missed);
    const text = `${count} events on ${gap.channel} were missed: ${why[gap.reason]}`;
    if (gap.channel.startsWith('risk:')) {
      const id = `missing:${gap.channel}@${gap.before.epoch}:${gap.before.seq}`;
      this.alerts.mayBeMissing(gap.channel, id, text);
      return;
    }
    this.pushFeed({
      kind: 'gap',
      id: `gap:${gap.channel}:${gap.before.epoch}:${gap.after.seq}`,
      ts: Date.now(),
      text,
    });
  }

  private pushFeed(item: FeedItem): void {
    this.feed = [item, ...this.feed].slice(0, MAX_FEED);
    this.options.changed();
  }
}

/** The gateway's WebSocket endpoint on the page's own host. */
export function gatewayWsUrl(): string {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/api/v1/ws`;
}
