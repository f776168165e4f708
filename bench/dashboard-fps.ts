/**
 * The trader dashboard under a busy book, in headless Chromium: does the page keep up?
 *
 *   node_modules/.bin/node bench/dashboard-fps.ts [--books 100x10,300x10,1000x10]
 *        [--seconds 10] [--warmup 2] [--root DIR] [--label NAME] [--timeout SECONDS]
 *        [--no-save]
 *
 * For each book N×R (N positions of one account, each updated R times a second): a fresh
 * gateway from DIR's dist/ (default: this checkout; point --root at a checkout of an older
 * release, built, to measure its page the same way) on a free 127.0.0.1 port, the N positions
 * published, the dashboard opened in Chromium (/usr/bin/chromium or CHROMIUM_PATH) with a token
 * for the account. After --warmup s the feed runs for --seconds: every 1/R s one POST
 * /api/v1/publish with a new price for each of the N positions (each price unique per
 * position, so the page's text names the update it shows). Measured in the page over that
 * window:
 *   - fps and frame p99: from the timestamps of a requestAnimationFrame loop;
 *   - long tasks: the share of the window inside tasks over 50 ms (PerformanceObserver
 *     'longtask');
 *   - publish-to-paint: a MutationObserver on the account's table notes the rows that changed;
 *     at the next animation frame (the one after the frame that drew them) each row's price is
 *     read and matched to when it was published (same machine, same clock). Only updates the
 *     page showed count: with a virtual book, the rows in view. p50 and p99.
 * Prints one table; writes bench/results/dashboard-fps-<timestamp>.json. Every run stops by
 * itself: the gateway under timeout(1), the whole script after --timeout s.
 */
import path from 'node:path';
import process from 'node:process';
import { chromium, type Browser, type Page } from 'playwright-core';
import { log, parseOptions, runMain } from './cli.ts';
import { signToken } from './client.ts';
import { sleep } from './measure.ts';
import { environment, fx, saveResults, table, type Column } from './report.ts';
import { baseEnv, freePort, httpGet, httpPost, ROOT, startProcess, stopServer } from './servers.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ACCOUNT = 'BENCH1';
const SECRETS = {
  jwtSecret: 'bench-secret-0123456789abcdef0123456789ab',
  publishToken: 'pub_bench',
};

const { argv, fail } = parseOptions(import.meta.url, 'dashboard-fps', {
  books: { type: 'string', default: '100x10,300x10,1000x10' },
  seconds: { type: 'string', default: '10' },
  warmup: { type: 'string', default: '2' },
  root: { type: 'string', default: ROOT },
  label: { type: 'string', default: 'this checkout' },
  timeout: { type: 'string' },
  'no-save': { type: 'boolean', default: false },
});

interface Book {
  readonly positions: number;
  readonly rate: number;
}

const books: Book[] = argv.books.split(',').map((b) => {
  const [n, r] = b.split('x').map(Number);
  if (!n || !r || n < 1 || n > 1000 || r < 1 || r > 50) fail(`--books: NxR, N 1..1000, R 1..50`);
  return { positions: n ?? 0, rate: r ?? 0 };
});
const seconds = Number(argv.seconds);
const warmup = Number(argv.warmup);
if (!(seconds >= 1 && seconds <= 120)) fail('--seconds: 1..120');
if (!(warmup >= 0 && warmup <= 30)) fail('--warmup: 0..30');
const root = path.resolve(argv.root);
const bound = Number(argv.timeout ?? books.length * (seconds + warmup + 40) + 30);

/** What the page reports at the end of the window. */
interface PageFigures {
  frames: number[];
  longTasks: [number, number][];
  paints: [string, number, number][];
  start: number;
  end: number;
}

/** Installed in the page when the window opens; `window.benchStop()` closes it. */
const MEASURE = `(account) => {
  const m = { frames: [], longTasks: [], paints: [], start: performance.now(), end: 0 };
  let stopped = false;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) m.longTasks.push([e.startTime, e.duration]);
  }).observe({ type: 'longtask' });
  const loop = (t) => { m.frames.push(t); if (!stopped) requestAnimationFrame(loop); };
  requestAnimationFrame(loop);
  const card = document.querySelector('[data-testid="positions-' + account + '"]');
  const dirty = new Set();
  let pending = false;
  new MutationObserver((records) => {
    for (const r of records) {
      const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
      const tr = el && el.closest('tr[data-symbol]');
      if (tr) dirty.add(tr);
    }
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      const now = Date.now();
      for (const tr of dirty) {
        const cell = tr.querySelector('[data-testid="price"]');
        if (cell) m.paints.push([tr.dataset.symbol, Number(cell.textContent.replace(/[^0-9.]/g, '')), now]);
      }
      dirty.clear();
    });
  }).observe(card, { subtree: true, childList: true, characterData: true });
  window.benchStop = () => { stopped = true; m.end = performance.now(); return m; };
}`;

const symbol = (i: number): string => `S${String(i).padStart(4, '0')}`;
/** Unique per position and update, below 1,000 (no grouping), at most 3 decimals. */
const priceOf = (i: number, k: number): number => Number((100 + i / 10 + k / 1000).toFixed(3));

interface Row {
  book: string;
  fps: number;
  frameP99: number;
  longTaskPct: number;
  paintP50: number | null;
  paintP99: number | null;
  shown: number;
  published: number;
}

function quantile(xs: number[], q: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? null;
}

async function publish(port: number, events: unknown[]): Promise<void> {
  const r = await httpPost(
    `http://127.0.0.1:${port}/api/v1/publish`,
    { events },
    { authorization: `Bearer ${SECRETS.publishToken}` },
  );
  if (r.status !== 200) throw new Error(`publish answered ${r.status ?? 'nothing'}: ${r.body}`);
}

const update = (i: number, k: number) => {
  const price = priceOf(i, k);
  return {
    channel: `positions:${ACCOUNT}`,
    key: symbol(i),
    data: { symbol: symbol(i), side: 'long', size: 1000, price, pnl: (price - 100) * 1000 },
  };
};

async function measureBook(browser: Browser, book: Book): Promise<Row> {
  const port = await freePort();
  const gateway = await startProcess({
    label: 'archon',
    cmd: process.execPath,
    args: [path.join(root, 'bin', 'archon-ws.js'), 'serve', '--port', String(port)],
    env: {
      ...baseEnv(),
      HOST: '127.0.0.1',
      ARCHON_JWT_SECRET: SECRETS.jwtSecret,
      ARCHON_PUBLISH_TOKENS: SECRETS.publishToken,
      LOG_LEVEL: 'warn',
    },
    bound: seconds + warmup + 60,
    ready: async () => (await httpGet(`http://127.0.0.1:${port}/api/health`)).status === 200,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    const all = Array.from({ length: book.positions }, (_, i) => i);
    let k = 0;
    await publish(
      port,
      all.map((i) => update(i, k)),
    );
    const page: Page = await context.newPage();
    const token = await signToken(SECRETS.jwtSecret, 'bench-trader', [ACCOUNT]);
    await page.goto(`http://127.0.0.1:${port}/#token=${token}`);
    await page
      .locator(`[data-testid="positions-${ACCOUNT}"] tbody tr[data-symbol]`)
      .first()
      .waitFor({ timeout: 20_000 });
    const publishedAt = new Map<string, number>();
    const tick = 1000 / book.rate;
    const feed = async (untilMs: number, record: boolean): Promise<number> => {
      let n = 0;
      for (let next = Date.now(); Date.now() < untilMs; next += tick) {
        k++;
        const at = Date.now();
        if (record) for (const i of all) publishedAt.set(`${symbol(i)}|${priceOf(i, k)}`, at);
        await publish(
          port,
          all.map((i) => update(i, k)),
        );
        n += all.length;
        await sleep(Math.max(0, next + tick - Date.now()));
      }
      return n;
    };
    await feed(Date.now() + warmup * 1000, false);
    await page.evaluate(`(${MEASURE})(${JSON.stringify(ACCOUNT)})`);
    const published = await feed(Date.now() + seconds * 1000, true);
    const m = await page.evaluate<PageFigures>('window.benchStop()');
    const span = m.end - m.start;
    const gaps = m.frames.slice(1).map((t, i) => t - (m.frames[i] ?? t));
    const long = m.longTasks.reduce(
      (sum, [start, d]) => sum + Math.max(0, Math.min(start + d, m.end) - Math.max(start, m.start)),
      0,
    );
    const delays = m.paints.flatMap(([sym, price, at]) => {
      const sent = publishedAt.get(`${sym}|${price}`);
      return sent === undefined ? [] : [at - sent];
    });
    return {
      book: `${book.positions}×${book.rate}/s`,
      fps: (m.frames.length - 1) / (span / 1000),
      frameP99: quantile(gaps, 0.99) ?? 0,
      longTaskPct: (100 * long) / span,
      paintP50: quantile(delays, 0.5),
      paintP99: quantile(delays, 0.99),
      shown: delays.length,
      published,
    };
  } finally {
    await context.close();
    await stopServer(gateway);
  }
}

const ms = (x: number | null): string => (x === null ? '—' : fx(x, 0));
const COLUMNS: Column<Row>[] = [
  ['book', 12, (r) => r.book],
  ['fps', 6, (r) => fx(r.fps, 0)],
  ['frame p99 ms', 13, (r) => ms(r.frameP99)],
  ['long tasks %', 13, (r) => fx(r.longTaskPct, 0)],
  ['paint p50 ms', 13, (r) => ms(r.paintP50)],
  ['paint p99 ms', 13, (r) => ms(r.paintP99)],
  ['shown', 8, (r) => r.shown],
  ['published', 10, (r) => r.published],
];

runMain('dashboard-fps', bound, async () => {
  const started = new Date();
  log(`dashboard-fps: ${argv.label} (${root}), books ${argv.books}, ${seconds} s each`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
  const rows: Row[] = [];
  try {
    for (const book of books) {
      log(`  ${book.positions}×${book.rate}/s…`);
      rows.push(await measureBook(browser, book));
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(`${argv.label}\n${table(COLUMNS, rows)}\n`);
  if (!argv['no-save'])
    saveResults('dashboard-fps-', started, {
      environment: environment({ root, label: argv.label }),
      seconds,
      warmup,
      rows,
    });
});
