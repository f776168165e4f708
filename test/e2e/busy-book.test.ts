/**
 * A busy book in a real Chromium: 300 positions of one account, each updated 10 times a
 * second for a few seconds, some deleted at the end. However the page coalesces and virtualises
 * (docs/web.md#under-a-busy-book), it must end showing exactly the last published value of every
 * position, none of the deleted ones, and say Live. Speed is measured by
 * bench/dashboard-fps.ts, never asserted here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { screenshot, useBrowser, type TrackedPage } from '../support/browser.js';
import { PUBLISH_TOKEN, signToken } from '../support/gateway.js';
import { ensureBuilt, killAll, sleep, startInstance, type Instance } from '../support/processes.js';

const ACCOUNT = 'BUSY1';
const POSITIONS = 300;
const TICKS = 30; // 3 s at 10 per second
const DELETED = 10;

const symbol = (i: number) => `SYM${String(i).padStart(3, '0')}`;
/** Prices below 1,000 with two decimals: shown as published, without grouping. */
const priceAt = (i: number, tick: number) =>
  Number((100 + i + ((tick * 7) % 100) / 100).toFixed(2));

interface Event {
  channel: string;
  key: string;
  data: Record<string, unknown> | null;
}

async function publish(base: string, events: Event[]): Promise<void> {
  const res = await fetch(`${base}/api/v1/publish`, {
    method: 'POST',
    headers: { authorization: `Bearer ${PUBLISH_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ events }),
  });
  expect(res.status).toBe(200);
}

/** Every row of the account's table, scrolled through (a long book draws only what is in view). */
const READ_ROWS = `(async (account) => {
  const card = document.querySelector('[data-testid="positions-' + account + '"]');
  const box = card?.querySelector('.table-wrap');
  if (!box) return {};
  const frame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const seen = {};
  for (let top = 0; ; top += Math.max(1, box.clientHeight - 60)) {
    box.scrollTop = top;
    await frame();
    for (const tr of box.querySelectorAll('tbody tr[data-symbol]'))
      seen[tr.dataset.symbol] = tr.querySelector('[data-testid="price"]').textContent.replace(/[▲▼]/g, '');
    if (box.scrollTop + box.clientHeight >= box.scrollHeight - 1) break;
  }
  box.scrollTop = 0;
  return seen;
})`;

describe('dashboard under a busy book', { timeout: 90_000 }, () => {
  const browser = useBrowser();
  let gw: Instance;
  let t: TrackedPage;

  beforeAll(async () => {
    ensureBuilt();
    gw = await startInstance('busy-1');
    await publish(
      gw.http,
      Array.from({ length: POSITIONS }, (_, i) => ({
        channel: `positions:${ACCOUNT}`,
        key: symbol(i),
        data: { symbol: symbol(i), side: 'long', size: 1000, price: priceAt(i, 0), pnl: 0 },
      })),
    );
    t = await browser.open();
    await t.page.goto(`${gw.http}/#token=${await signToken({ sub: 'busy', accounts: [ACCOUNT] })}`);
  }, 60_000);
  afterAll(() => killAll());

  it('ends showing exactly the last published value of every position, and Live', async () => {
    const card = t.page.getByTestId(`positions-${ACCOUNT}`);
    await expect.poll(() => card.getAttribute('data-rows'), { timeout: 15_000 }).toBe('300');
    const expected: Record<string, string> = {};
    for (let tick = 1; tick <= TICKS; tick++) {
      const started = Date.now();
      await publish(
        gw.http,
        Array.from({ length: POSITIONS }, (_, i) => {
          const price = priceAt(i, tick);
          expected[symbol(i)] = price.toFixed(2);
          const pnl = Number(((price - 100 - i) * 1000).toFixed(2));
          return {
            channel: `positions:${ACCOUNT}`,
            key: symbol(i),
            data: { symbol: symbol(i), side: 'long', size: 1000, price, pnl },
          };
        }),
      );
      if (tick === TICKS / 2) await screenshot(t.page, 'dashboard-busy-book.png');
      await sleep(Math.max(0, 100 - (Date.now() - started)));
    }
    // Deletes in the last burst are never coalesced away.
    await publish(
      gw.http,
      Array.from({ length: DELETED }, (_, i) => ({
        channel: `positions:${ACCOUNT}`,
        key: symbol(i * 7),
        data: null,
      })),
    );
    for (let i = 0; i < DELETED; i++) delete expected[symbol(i * 7)];

    await expect
      .poll(() => card.getAttribute('data-rows'), { timeout: 10_000 })
      .toBe(String(POSITIONS - DELETED));
    await expect
      .poll(() => t.page.evaluate(`${READ_ROWS}(${JSON.stringify(ACCOUNT)})`), { timeout: 10_000 })
      .toEqual(expected);
    expect(await t.page.getByTestId('connection').getAttribute('data-state')).toBe('connected');
    expect(await t.page.getByTestId('connection').locator('.label').textContent()).toBe('Live');
    expect(t.problems).toEqual([]);
  });
});
