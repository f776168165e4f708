/**
 * Embedded demo trading feed for `--demo`: gives a first-time user plausible traffic on every
 * channel class (positions state, signals stream, risk alerts) without a real backend. It only
 * produces events and hands them to `publish`; transport is the caller's business.
 */

export interface DemoEvent {
  channel: string;
  key?: string;
  data: unknown;
}

export interface DemoFeedOptions {
  publish: (events: DemoEvent[]) => Promise<unknown>;
  onError?: (err: unknown) => void;
  random?: () => number;
  tickMs?: number;
  signalEveryMs?: number;
  alertEveryMs?: number;
}

export interface DemoFeed {
  stop(): void;
}

export const DEMO_ACCOUNTS: readonly string[] = Object.freeze(['DEMO1', 'DEMO2', 'DEMO3']);

interface Market {
  start: number;
  decimals: number;
  /** Standard deviation of one tick's move, as a fraction of the price. */
  vol: number;
  /** Position sizes are 1..20 multiples of this, so P&L swings are of a similar order. */
  lot: number;
  /** USDJPY P&L accrues in yen; dividing by the price reports it in USD like the rest. */
  jpy?: boolean;
}

const MARKETS: Readonly<Record<string, Market>> = {
  EURUSD: { start: 1.085, decimals: 5, vol: 0.00004, lot: 10_000 },
  GBPUSD: { start: 1.265, decimals: 5, vol: 0.00005, lot: 10_000 },
  USDJPY: { start: 151.2, decimals: 3, vol: 0.00004, lot: 10_000, jpy: true },
  XAUUSD: { start: 2650, decimals: 2, vol: 0.00008, lot: 10 },
  BTCUSD: { start: 95_000, decimals: 2, vol: 0.0003, lot: 0.05 },
  ETHUSD: { start: 3300, decimals: 2, vol: 0.0004, lot: 0.5 },
  US500: { start: 5900, decimals: 2, vol: 0.00008, lot: 1 },
  NAS100: { start: 21_000, decimals: 2, vol: 0.0001, lot: 1 },
  AAPL: { start: 228, decimals: 2, vol: 0.00015, lot: 10 },
  TSLA: { start: 350, decimals: 2, vol: 0.0003, lot: 10 },
};

export const DEMO_SYMBOLS: readonly string[] = Object.freeze(Object.keys(MARKETS));

const STRATEGIES = ['momentum', 'mean-reversion', 'breakout', 'trend-following'] as const;
type Strategy = (typeof STRATEGIES)[number];
/** One rotation (a close or an open) per account per this many ticks, on average. */
const ROTATION_ODDS = 60;
const MIN_POSITIONS = 3;
const MAX_POSITIONS = 6;

/** The `data` of a `positions:<account>` event the feed publishes. */
export interface DemoPosition {
  symbol: string;
  side: 'long' | 'short';
  size: number;
  entry_price: number;
  price: number;
  pnl: number;
  pnl_pct: number;
  updated_at: number;
}

interface Book {
  account: string;
  positions: Map<string, DemoPosition>;
  /** The second half of a rotation and the tick it is due. */
  pending: { kind: 'open' | 'close'; atTick: number } | null;
}

function round(value: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
}

function market(symbol: string): Market {
  const m = MARKETS[symbol];
  if (!m) throw new Error(`unknown demo symbol ${symbol}`);
  return m;
}

export function startDemoFeed(options: DemoFeedOptions): DemoFeed {
  const random = options.random ?? Math.random;
  const onError = options.onError ?? ((err: unknown) => console.error('demo feed:', err));
  const timeouts = new Set<NodeJS.Timeout>();
  const prices = new Map(DEMO_SYMBOLS.map((s) => [s, market(s).start]));
  let stopped = false;
  let tick = 0;

  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const between = (lo: number, hi: number): number => lo + random() * (hi - lo);
  // Sum of three uniforms: a cheap bell curve that, unlike Box-Muller, never takes log(0).
  const gauss = (): number => (random() + random() + random() - 1.5) * 2;
  const price = (symbol: string): number => prices.get(symbol) ?? market(symbol).start;
  const positionEvent = (book: Book, p: DemoPosition): DemoEvent => ({
    channel: `positions:${book.account}`,
    key: p.symbol,
    data: { ...p }, // a copy: the live object keeps changing after publish
  });

  function report(err: unknown): void {
    try {
      onError(err);
    } catch {
      // A throwing error handler must not take the feed (or the process) down with it.
    }
  }

  function send(events: DemoEvent[]): void {
    if (stopped || events.length === 0) return;
    try {
      options.publish(events).catch(report);
    } catch (err) {
      report(err);
    }
  }

  function revalue(p: DemoPosition, now: number): void {
    const sign = p.side === 'long' ? 1 : -1;
    const move = p.price - p.entry_price;
    p.pnl = round((sign * move * p.size) / (market(p.symbol).jpy ? p.price : 1), 2);
    p.pnl_pct = round(((sign * move) / p.entry_price) * 100, 2);
    p.updated_at = now;
  }

  /** Books never exceed 6 of the 10 symbols, so there is always a free one to open. */
  function open(book: Book, now: number, entrySpread: number): DemoEvent {
    const symbol = pick(DEMO_SYMBOLS.filter((s) => !book.positions.has(s)));
    const { lot, decimals } = market(symbol);
    const current = price(symbol);
    const p: DemoPosition = {
      symbol,
      side: random() < 0.5 ? 'long' : 'short',
      size: round(lot * (1 + Math.floor(random() * 20)), 2),
      // The initial book pretends positions were opened earlier, so they start with some P&L.
      entry_price: round(current * (1 + between(-entrySpread, entrySpread)), decimals),
      price: current,
      pnl: 0,
      pnl_pct: 0,
      updated_at: now,
    };
    revalue(p, now);
    book.positions.set(symbol, p);
    return positionEvent(book, p);
  }

  const books: Book[] = [];
  const initial: DemoEvent[] = [];
  for (const account of DEMO_ACCOUNTS) {
    const book: Book = { account, positions: new Map(), pending: null };
    books.push(book);
    const count = MIN_POSITIONS + Math.floor(random() * (MAX_POSITIONS - MIN_POSITIONS + 1));
    for (let i = 0; i < count; i++) initial.push(open(book, Date.now(), 0.01));
  }
  send(initial);

  // Every close is later followed by an open (and vice versa), so each book stays within 3–6.
  function rotate(book: Book, now: number, out: DemoEvent[]): void {
    let kind: 'open' | 'close';
    if (book.pending) {
      if (tick < book.pending.atTick) return;
      kind = book.pending.kind;
      book.pending = null;
    } else {
      if (random() >= 1 / ROTATION_ODDS) return;
      const n = book.positions.size;
      kind = n >= MAX_POSITIONS || (n > MIN_POSITIONS && random() < 0.5) ? 'close' : 'open';
      const atTick = tick + 5 + Math.floor(random() * 26);
      book.pending = { kind: kind === 'open' ? 'close' : 'open', atTick };
    }
    if (kind === 'open') {
      out.push(open(book, now, 0));
    } else {
      const symbol = pick([...book.positions.keys()]);
      book.positions.delete(symbol);
      out.push({ channel: `positions:${book.account}`, key: symbol, data: null });
    }
  }

  function onTick(): void {
    tick++;
    const now = Date.now();
    for (const symbol of DEMO_SYMBOLS) {
      const { start, vol, decimals } = market(symbol);
      const old = price(symbol);
      // A gentle pull back to the start price keeps a feed left running for days plausible.
      prices.set(symbol, round(old * (1 + vol * gauss()) + (start - old) * 0.001, decimals));
    }
    const batch: DemoEvent[] = [];
    for (const book of books) {
      for (const p of book.positions.values()) {
        if (price(p.symbol) === p.price) continue; // unchanged after rounding: nothing to say
        p.price = price(p.symbol);
        revalue(p, now);
        batch.push(positionEvent(book, p));
      }
      rotate(book, now, batch);
    }
    send(batch);
  }

  const reasons: Record<Strategy, (symbol: string, buy: boolean) => string> = {
    momentum: (symbol, buy) =>
      `${symbol} ${buy ? 'up' : 'down'} ${between(0.3, 1.5).toFixed(1)}% in 15 min on rising volume`,
    'mean-reversion': (_symbol, buy) =>
      `${between(2, 3).toFixed(1)}σ ${buy ? 'below' : 'above'} its 20-period mean`,
    breakout: (symbol, buy) =>
      `Broke ${buy ? 'above resistance' : 'below support'} at ${round(price(symbol) * (buy ? 0.999 : 1.001), market(symbol).decimals)}`,
    'trend-following': (_symbol, buy) => `20/50 EMA crossed ${buy ? 'up' : 'down'} on the 1h chart`,
  };

  function onSignal(): void {
    const symbol = pick(DEMO_SYMBOLS);
    const strategy = pick(STRATEGIES);
    const buy = random() < 0.5;
    const [action, strength] = [buy ? 'buy' : 'sell', round(between(0.35, 0.99), 2)];
    const reason = reasons[strategy](symbol, buy);
    const data = { symbol, action, strength, strategy, price: price(symbol), reason };
    send([{ channel: 'signals', data }]);
  }

  function onAlert(): void {
    const account = pick(DEMO_ACCOUNTS);
    const critical = random() < 0.3;
    const level = critical ? 'critical' : 'warning';
    const pct = Math.round(critical ? between(60, 99) : between(105, 149));
    const message = critical
      ? `Margin level ${pct}% on ${account} — below 100% critical threshold, positions may be closed`
      : `Margin level ${pct}% on ${account} — below 150% warning threshold`;
    const data = { level, kind: 'margin_level', margin_level: pct, message, ts: Date.now() };
    send([{ channel: `risk:${account}`, data }]);
  }

  // Jittered one-shot timers rather than intervals so signals and alerts don't arrive in lockstep.
  function every(meanMs: number, fn: () => void): void {
    if (stopped) return;
    const delay = meanMs * between(0.5, 1.5);
    const timer = setTimeout(() => {
      timeouts.delete(timer);
      fn();
      every(meanMs, fn);
    }, delay).unref();
    timeouts.add(timer);
  }

  const interval = setInterval(onTick, options.tickMs ?? 1000).unref();
  every(options.signalEveryMs ?? 4000, onSignal);
  every(options.alertEveryMs ?? 45_000, onAlert);

  return {
    stop(): void {
      stopped = true;
      clearInterval(interval);
      for (const timer of timeouts) clearTimeout(timer);
      timeouts.clear();
    },
  };
}
