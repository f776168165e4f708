/**
 * The trader dashboard in a real Chromium against a real `archon-ws serve --demo` process:
 * live rows change, the indicator tells the truth through a server stop and restart (without
 * a reload), a risk alert must be acknowledged (and stays acknowledged after a reload), an
 * operator broadcast shows as a banner, and the page works on a phone-width screen.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, PUBLISH_TOKEN, signToken } from '../support/gateway.js';
import { screenshot, useBrowser, type TrackedPage } from '../support/browser.js';
import { ensureBuilt, killAll, startInstance, type Instance } from '../support/processes.js';

const DEMO = ['DEMO1', 'DEMO2', 'DEMO3'];

/** What Chromium logs by itself while the server is down; anything else is a defect. */
const EXPECTED_WHILE_DOWN = /WebSocket connection to .* failed|ERR_CONNECTION_REFUSED/;

async function post(base: string, path: string, token: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status, `${path}: ${res.status}`).toBe(200);
  return res.json();
}

describe('trader dashboard (/)', { timeout: 90_000 }, () => {
  const browser = useBrowser();
  let gw: Instance;
  let token: string;
  let t: TrackedPage;

  beforeAll(async () => {
    ensureBuilt();
    gw = await startInstance('e2e-1', { args: ['--demo'] });
    token = await signToken({ sub: 'trader-7', accounts: DEMO });
    t = await browser.open();
    await t.page.goto(`${gw.http}/#token=${token}`);
  }, 60_000);
  afterAll(() => killAll());

  const indicator = () => t.page.getByTestId('connection');

  it('signs in from the fragment, removes the token from the address bar and goes Live', async () => {
    await expect
      .poll(() => indicator().getAttribute('data-state'), { timeout: 10_000 })
      .toBe('connected');
    await expect.poll(() => indicator().locator('.label').textContent()).toBe('Live');
    expect(new URL(t.page.url()).hash).toBe('');
    expect(await indicator().textContent()).toContain('via e2e-1');
  });

  it('shows every account of the token with its positions, and rows change live', async () => {
    for (const account of DEMO)
      await expect
        .poll(() => t.page.getByTestId(`positions-${account}`).locator('tbody tr').count(), {
          timeout: 10_000,
        })
        .toBeGreaterThan(0);
    const prices = () =>
      t.page.locator('[data-testid^="positions-"] [data-testid="price"]').allTextContents();
    const before = await prices();
    await expect.poll(prices, { timeout: 15_000 }).not.toEqual(before);
    // A moved price carries its direction and the highlight class.
    await expect
      .poll(() => t.page.locator('td.price.flash-up, td.price.flash-down').count(), {
        timeout: 10_000,
      })
      .toBeGreaterThan(0);
    await expect
      .poll(() => t.page.getByTestId('last-update').textContent())
      .toMatch(/last update (just now|\d+ s ago)/);
  });

  it('raises a published risk alert above everything until it is acknowledged, also after a reload', async () => {
    const message = `E2E margin call ${Date.now()}`;
    await post(gw.http, '/api/v1/publish', PUBLISH_TOKEN, {
      channel: 'risk:DEMO2',
      data: { level: 'critical', kind: 'margin_level', message },
    });
    const pending = t.page.getByTestId('risk-alerts').locator('li', { hasText: message });
    await pending.waitFor({ timeout: 10_000 });
    expect(await pending.textContent()).toContain('DEMO2');
    expect(await t.page.title()).toMatch(/Risk alert/);
    await screenshot(t.page, 'dashboard.png');

    // Unacknowledged, it survives a reload (replayed from the alert history).
    await t.page.reload();
    await t.page.getByTestId('risk-alerts').locator('li', { hasText: message }).waitFor({
      timeout: 10_000,
    });
    await t.page
      .getByTestId('risk-alerts')
      .locator('li', { hasText: message })
      .getByRole('button', { name: 'Acknowledge' })
      .click();
    await t.page.getByTestId('risk-alerts').locator('li', { hasText: message }).waitFor({
      state: 'detached',
    });
    await t.page.getByTestId('alert-history').getByText(message).waitFor();

    // Acknowledged, a reload does not raise it again.
    await t.page.reload();
    await expect
      .poll(() => indicator().getAttribute('data-state'), { timeout: 10_000 })
      .toBe('connected');
    await t.page.getByTestId('alert-history').getByText(message).waitFor({ timeout: 10_000 });
    expect(
      await t.page.getByTestId('risk-alerts').locator('li', { hasText: message }).count(),
    ).toBe(0);
  });

  it('shows an operator broadcast as a banner', async () => {
    const answer = (await post(gw.http, '/api/v1/admin/broadcast', ADMIN_TOKEN, {
      type: 'system',
      message: 'Please refresh your dashboard',
    })) as { delivered: number };
    expect(answer.delivered).toBeGreaterThanOrEqual(1);
    const banner = t.page.getByTestId('system-notice');
    await banner.waitFor({ timeout: 10_000 });
    expect(await banner.textContent()).toContain('Please refresh your dashboard');
    await banner.getByRole('button', { name: 'Dismiss notice' }).click();
    await banner.waitFor({ state: 'detached' });
  });

  it('says Reconnecting within seconds of the server stopping, and is Live again by itself when it is back', async () => {
    // Set in the page now, read after the restart: still there means no reload happened.
    await t.page.evaluate("window.marker = 'same document'");
    const port = gw.port;
    gw.child.kill('SIGTERM');
    await gw.exited;
    await expect
      .poll(() => indicator().getAttribute('data-state'), { timeout: 5_000, interval: 100 })
      .toBe('reconnecting');
    await expect
      .poll(() => indicator().locator('.label').textContent())
      .toMatch(/^Reconnecting \((next try in \d+ s|trying now)\)$/);
    await t.page.getByTestId('not-live').waitFor();
    await screenshot(t.page, 'dashboard-reconnecting.png');

    gw = await startInstance('e2e-2', { args: ['--demo'], port });
    // Backoff is capped at 20 s; a short outage retries well within that.
    await expect
      .poll(() => indicator().getAttribute('data-state'), { timeout: 30_000, interval: 200 })
      .toBe('connected');
    expect(await indicator().textContent()).toContain('via e2e-2');
    expect(await t.page.evaluate('window.marker')).toBe('same document');
    await t.page.getByTestId('not-live').waitFor({ state: 'detached' });
    // Data flows again from the new server.
    const prices = () =>
      t.page.locator('[data-testid^="positions-"] [data-testid="price"]').allTextContents();
    const after = await prices();
    await expect.poll(prices, { timeout: 15_000 }).not.toEqual(after);
    expect(t.problems.filter((p) => !EXPECTED_WHILE_DOWN.test(p))).toEqual([]);
  });

  it('works on a phone-width screen', async () => {
    const phone = await browser.open({ width: 390, height: 844 });
    await phone.page.goto(`${gw.http}/#token=${token}`);
    await expect
      .poll(() => phone.page.getByTestId('connection').getAttribute('data-state'), {
        timeout: 10_000,
      })
      .toBe('connected');
    await phone.page.getByTestId('positions-DEMO1').locator('tbody tr').first().waitFor();
    const overflow = await phone.page.evaluate(
      'document.documentElement.scrollWidth - document.documentElement.clientWidth',
    );
    expect(overflow).toBe(0);
    // Every column shown fits: no table needs a sideways scroll.
    const clipped = await phone.page.evaluate(
      "[...document.querySelectorAll('.table-wrap')].filter((e) => e.scrollWidth > e.clientWidth).length",
    );
    expect(clipped).toBe(0);
    await screenshot(phone.page, 'dashboard-phone.png');
    expect(phone.problems).toEqual([]);
  });

  it('asks for a token when none is given, and refuses one the gateway rejects', async () => {
    const p = await browser.open();
    await p.page.goto(gw.http);
    await p.page.getByRole('heading', { name: 'Archon live dashboard' }).waitFor();
    const forged = await signToken({ accounts: DEMO }, 'not-the-gateway-secret-0123456789abcdef');
    await p.page.locator('textarea[name="token"]').fill(forged);
    await p.page.getByRole('button', { name: 'Sign in' }).click();
    await p.page.getByRole('alert').filter({ hasText: 'refused' }).waitFor({ timeout: 10_000 });
    expect(await p.page.locator('textarea[name="token"]').count()).toBe(1);
  });
});
