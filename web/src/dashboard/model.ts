/**
 * Everything the trader dashboard shows, kept from the SDK's events: connection, positions per
 * account, signals, risk alerts (with acknowledgements that survive a reload) and operator
 * notices. Components read it and re-render when it calls `changed`.
 */
import {
  ArchonClient,
  type ChannelEvent,
  type ConnectionState,
  type Gap,
  type Position,
  type PositionsStore,
  type StoreChange,
} from '../../../src/client/index.js';

export const CLIENT_NAME = 'archon-dashboard/0.1.0';

/** A position as the trading engine publishes it (fields it lacks show as —). */
export interface PositionData {
  symbol?: string;
  side?: string;
  size?: number;
  entry_price?: number;
  price?: number;
  pnl?: number;
  pnl_pct?: number;
}

export interface PositionRow {
  readonly key: string;
  readonly data: PositionData;
  /** Which way the price moved on the last update; null after a snapshot. */
  readonly move: 'up' | 'down' | null;
  /** The seq of the last change: a new value re-mounts the cells, replaying the highlight. */
  readonly seq: number;
}

export interface AccountView {
  readonly account: string;
  readonly rows: Map<string, PositionRow>;
  ready: boolean;
  problem: string | null;
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

export interface Alert {
  readonly id: string;
  readonly account: string;
  readonly channel: string;
  readonly epoch: string;
  readonly seq: number;
  readonly ts: number;
  readonly level: string;
  readonly message: string;
  /** Replayed after a reconnect or read from history: it happened while we were away. */
  readonly late: boolean;
  acknowledgedAt: number | null;
}

export interface Notice {
  readonly id: number;
  readonly message: string;
  readonly ts: number;
}

export interface ConnectionView {
  state: ConnectionState;
  /** When the next connection attempt starts, while reconnecting. */
  retryAt: number | null;
  /** The answering server, while connected. */
  server: string | null;
  /** Why the page is not connected, in words, when it knows. */
  problem: string | null;
}

const MAX_FEED = 100;
const MAX_ALERTS = 200;
const MAX_ACKS = 200;
const ACKS_KEY = 'archon.dashboard.acks';
const resumeKey = (channel: string) => `archon.dashboard.resume.${channel}`;

export interface ModelOptions {
  readonly url: string;
  readonly token: string;
  readonly accounts: readonly string[];
  /** Called after every change (the page batches renders per frame). */
  readonly changed: () => void;
  /** The server refused the token (4001): the page asks for a new one. */
  readonly refused: (reason: string) => void;
}

export class DashboardModel {
  readonly connection: ConnectionView = {
    state: 'connecting',
    retryAt: null,
    server: null,
    problem: null,
  };
  readonly accounts: AccountView[];
  feed: FeedItem[] = [];
  alerts: Alert[] = [];
  notices: Notice[] = [];
  /** When data (an event or a snapshot) last arrived; null before the first. */
  lastUpdate: number | null = null;
  private readonly client: ArchonClient;
  /** Acknowledged alerts, newest last, kept across reloads. */
  private readonly acks: Map<string, Alert>;
  private noticeIds = 0;

  constructor(private readonly options: ModelOptions) {
    this.acks = loadAcks();
    this.alerts = [...this.acks.values()].reverse();
    this.client = new ArchonClient({
      url: options.url,
      token: options.token,
      clientName: CLIENT_NAME,
    });
    this.accounts = options.accounts.map((account) => ({
      account,
      rows: new Map(),
      ready: false,
      problem: null,
    }));
    this.watchConnection();
    for (const view of this.accounts) {
      this.watchPositions(view, this.client.positions<PositionData>(view.account));
      this.watchRisk(view.account);
    }
    this.client.subscribe<Record<string, unknown>>('signals', (event) => this.onSignal(event));
  }

  get pendingAlerts(): Alert[] {
    return this.alerts.filter((a) => a.acknowledgedAt === null);
  }

  acknowledge(id: string): void {
    const alert = this.alerts.find((a) => a.id === id);
    if (!alert || alert.acknowledgedAt !== null) return;
    alert.acknowledgedAt = Date.now();
    this.acks.set(id, alert);
    saveAcks(this.acks);
    this.saveResume(alert.channel);
    this.options.changed();
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
    this.client.close();
  }

  private watchConnection(): void {
    const c = this.connection;
    this.client.on('state', (state) => {
      c.state = state;
      c.retryAt = this.client.nextRetryAt;
      if (state === 'connected') c.problem = null;
      this.options.changed();
    });
    this.client.on('retry', (info) => {
      c.retryAt = info.at;
      this.options.changed();
    });
    this.client.on('welcome', (welcome) => {
      c.server = welcome.server;
      this.options.changed();
    });
    this.client.on('disconnect', (info) => {
      c.server = null;
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
      this.notices = [{ id: ++this.noticeIds, ...notice }, ...this.notices].slice(0, 3);
      this.options.changed();
    });
    this.client.on('gap', (gap) => this.onGap(gap));
  }

  private watchPositions(view: AccountView, store: PositionsStore<PositionData>): void {
    store.on('change', (change: StoreChange<PositionData>) => {
      this.lastUpdate = Date.now();
      view.ready = true;
      view.problem = null;
      if (change.kind === 'snapshot') {
        view.rows.clear();
        for (const [key, data] of change.entries)
          view.rows.set(key, { key, data, move: null, seq: change.seq });
      } else if (change.kind === 'delete') {
        view.rows.delete(change.key);
      } else {
        const before = change.previous?.price;
        const after = change.value.price;
        const move =
          before === undefined || after === undefined || before === after
            ? (view.rows.get(change.key)?.move ?? null)
            : after > before
              ? 'up'
              : 'down';
        view.rows.set(change.key, { key: change.key, data: change.value, move, seq: change.seq });
      }
      this.options.changed();
    });
    store.subscription.on('error', (error) => {
      view.problem = error.message;
      this.options.changed();
    });
  }

  /**
   * Risk alerts resume from the oldest unacknowledged one, so an alert that arrived but was not
   * acknowledged before a reload is shown again, and one that came while the page was closed
   * is replayed from history.
   */
  private watchRisk(account: string): void {
    const channel = `risk:${account}`;
    const since = loadResume(channel);
    const sub = this.client.subscribe<Record<string, unknown>>(
      channel,
      (event) => this.onAlert(account, event),
      since ? { since } : {},
    );
    sub.on('error', (error) => {
      const view = this.accounts.find((a) => a.account === account);
      if (view) view.problem = `risk alerts: ${error.message}`;
      this.options.changed();
    });
  }

  private onAlert(account: string, event: ChannelEvent<Record<string, unknown>>): void {
    this.lastUpdate = Date.now();
    const id = `${event.channel}@${event.epoch}:${event.seq}`;
    // Already shown (a replay after reconnect, or acknowledged before a reload).
    if (this.alerts.some((a) => a.id === id)) return;
    const data = event.data ?? {};
    const message =
      typeof data.message === 'string' ? data.message : JSON.stringify(data).slice(0, 300);
    this.alerts = [
      {
        id,
        account,
        channel: event.channel,
        epoch: event.epoch,
        seq: event.seq,
        ts: typeof data.ts === 'number' ? data.ts : event.ts,
        level: typeof data.level === 'string' ? data.level : 'alert',
        message,
        late: event.source !== 'live',
        acknowledgedAt: null,
      },
      ...this.alerts,
    ].slice(0, MAX_ALERTS);
    this.saveResume(event.channel);
    this.options.changed();
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
      'epoch-changed': 'the server lost its history (restart)',
      trimmed: 'they are older than the history kept',
      'history-unavailable': 'history could not be read',
      skipped: 'the stream skipped ahead',
    };
    const missed = Math.max(0, gap.before.seq - gap.after.seq - 1);
    const count = gap.reason === 'epoch-changed' ? 'Some' : String(missed || 'Some');
    const text = `${count} events on ${gap.channel} were missed: ${why[gap.reason]}`;
    if (gap.channel.startsWith('risk:')) {
      this.notices = [
        {
          id: ++this.noticeIds,
          message: `Risk alerts may be missing. ${text}. Check the risk system directly.`,
          ts: Date.now(),
        },
        ...this.notices,
      ].slice(0, 3);
      this.options.changed();
      return;
    }
    this.pushFeed({ kind: 'gap', id: `gap:${gap.channel}:${gap.after.seq}`, ts: Date.now(), text });
  }

  private pushFeed(item: FeedItem): void {
    this.feed = [item, ...this.feed].slice(0, MAX_FEED);
    this.options.changed();
  }

  private saveResume(channel: string): void {
    const mine = this.alerts.filter((a) => a.channel === channel);
    const epoch = mine[0]?.epoch;
    if (epoch === undefined) return;
    const pending = mine.filter((a) => a.epoch === epoch && a.acknowledgedAt === null);
    const seq =
      pending.length > 0
        ? Math.min(...pending.map((a) => a.seq)) - 1
        : Math.max(...mine.filter((a) => a.epoch === epoch).map((a) => a.seq));
    localStorage.setItem(resumeKey(channel), JSON.stringify({ epoch, seq }));
  }
}

function loadResume(channel: string): Position | null {
  try {
    const raw = JSON.parse(localStorage.getItem(resumeKey(channel)) ?? 'null') as unknown;
    const p = raw as Partial<Position> | null;
    return p && typeof p.epoch === 'string' && typeof p.seq === 'number' && p.seq >= 0
      ? { epoch: p.epoch, seq: p.seq }
      : null;
  } catch {
    return null;
  }
}

function loadAcks(): Map<string, Alert> {
  try {
    const raw = JSON.parse(localStorage.getItem(ACKS_KEY) ?? '[]') as unknown;
    const alerts = Array.isArray(raw) ? raw.filter(isAlert) : [];
    return new Map(alerts.map((a) => [a.id, a]));
  } catch {
    return new Map();
  }
}

function isAlert(v: unknown): v is Alert {
  const a = v as Partial<Alert> | null;
  return (
    typeof a?.id === 'string' &&
    typeof a.channel === 'string' &&
    typeof a.message === 'string' &&
    typeof a.seq === 'number' &&
    typeof a.ts === 'number' &&
    typeof a.acknowledgedAt === 'number'
  );
}

function saveAcks(acks: Map<string, Alert>): void {
  localStorage.setItem(ACKS_KEY, JSON.stringify([...acks.values()].slice(-MAX_ACKS)));
}

/** The gateway's WebSocket endpoint on the page's own host. */
export function gatewayWsUrl(): string {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/api/v1/ws`;
}
