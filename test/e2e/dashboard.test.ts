/**
 * The trader dashboard in a real Chromium against a real `archon-ws serve --demo` process:
 * live rows change; the indicator tells the truth through a clean stop, a restart and a
 * silent (frozen) server, returning to Live without a reload; a risk alert must be
 * acknowledged, survives a reload and a gateway restart, and one published while the page was
 * closed is shown when it opens; an operator broadcast shows as a banner; the page fits a
 * phone-width screen, long alert texts included.
 *
 * The tests of the first part share one page and one gateway and run in order, as a trader's
 * session would. The second part has two traders of one account on their own devices: an
 * acknowledgement goes through the gateway and clears the alert on every page of the account.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, PUBLISH_TOKEN, signToken } from '../support/gateway.js';
import { screenshot, useBrowser, type TrackedPage } from '../support/browser.js';
import { ensureBuilt, killAll, startInstance, type Instance } from '../support/processes.js';

const DEMO = ['DEMO1', 'DEMO2', 'DEMO3'];
/** Short liveness settings, so a frozen server is noticed in seconds (docs/protocol.md). */
const LIVENESS = { WEBSOCKET_PING_INTERVAL: '2', WEBSOCKET_PING_TIMEOUT: '1' };

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

  const start = (id: string, port?: number) =>
    startInstance(id, { args: ['--demo'], env: LIVENESS, ...(port && { port }) });
  const publishAlert = (account: string, data: Record<string, unknown>) =>
    post(gw.http, '/api/v1/publish', PUBLISH_TOKEN, { channel: `risk:${account}`, data });

  beforeAll(async () => {
    ensureBuilt();
    gw = await start('e2e-1');
    token = await signToken({ sub: 'trader-7', accounts: DEMO });
    t = await browser.open();
    await t.page.goto(`${gw.http}/#token=${token}`);
  }, 60_000);
  afterAll(() => killAll());

  const indicator = () => t.page.getByTestId('connection');
  const state = () => indicator().getAttribute('data-state');
  const pendingAlert = (text: string) =>
    t.page.getByTestId('risk-alerts').locator('li', { hasText: text });
  const prices = () =>
    t.page.locator('[data-testid^="positions-"] [data-testid="price"]').allTextContents();
  /** Every channel of every account is live again (not merely connected). */
  const allLive = async () => {
    await expect.poll(state, { timeout: 30_000, interval: 200 }).toBe('connected');
    for (const a of DEMO)
      expect(await t.page.getByTestId(`positions-${a}`).getAttribute('data-risk-state')).toBe(
        'live',
      );
  };
  /** Acknowledges every waiting alert, one by one, each gone before the next. */
  const acknowledgeAll = async () => {
    const items = t.page.getByTestId('risk-alerts').locator('li[data-alert-id]');
    for (;;) {
      const id = await items
        .first()
        .getAttribute('data-alert-id', { timeout: 500 })
        .catch(() => null);
      if (id === null) return;
      const item = t.page.locator(`li[data-alert-id="${id}"]`);
      await item.getByRole('button', { name: 'Acknowledge' }).click();
      await item.waitFor({ state: 'detached' });
    }
  };

  it('signs in from the fragment, removes the token from the address bar and goes Live', async () => {
    await expect.poll(state, { timeout: 10_000 }).toBe('connected');
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
    await acknowledgeAll(); // the demo feed's own margin alerts
    const message = `E2E margin call ${Date.now()}`;
    await publishAlert('DEMO2', { level: 'critical', kind: 'margin_level', message });
    await pendingAlert(message).waitFor({ timeout: 10_000 });
    expect(await pendingAlert(message).textContent()).toContain('DEMO2');
    expect(await t.page.title()).toMatch(/Risk alert/);
    await screenshot(t.page, 'dashboard.png');

    // Unacknowledged, it survives a reload.
    await t.page.reload();
    await pendingAlert(message).waitFor({ timeout: 10_000 });
    await pendingAlert(message).getByRole('button', { name: 'Acknowledge' }).click();
    await pendingAlert(message).waitFor({ state: 'detached' });
    await t.page.getByTestId('alert-history').getByText(message).waitFor();

    // Acknowledged, a reload does not raise it again, even once every channel is live.
    await t.page.reload();
    await allLive();
    await t.page.getByTestId('alert-history').getByText(message).waitFor({ timeout: 10_000 });
    expect(await pendingAlert(message).count()).toBe(0);
  });

  it('shows an alert published while the page was closed as soon as it opens again', async () => {
    await acknowledgeAll();
    await t.page.goto('about:blank');
    const message = `Published while closed ${Date.now()}`;
    await publishAlert('DEMO3', { level: 'warning', message });
    await t.page.goto(gw.http); // the token is still in this tab's session
    await pendingAlert(message).waitFor({ timeout: 10_000 });
    expect(await pendingAlert(message).textContent()).toContain('arrived while disconnected');
    await pendingAlert(message).getByRole('button', { name: 'Acknowledge' }).click();
    await allLive();
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

  it('says Reconnecting within seconds of the server stopping, is Live again by itself when it is back, and keeps a waiting alert', async () => {
    await acknowledgeAll();
    const waiting = `Waiting through a restart ${Date.now()}`;
    await publishAlert('DEMO1', { level: 'critical', message: waiting });
    await pendingAlert(waiting).waitFor({ timeout: 10_000 });
    // Set in the page now, read after the restart: still there means no reload happened.
    await t.page.evaluate("window.marker = 'same document'");

    const port = gw.port;
    gw.child.kill('SIGTERM');
    await gw.exited;
    await expect.poll(state, { timeout: 5_000, interval: 100 }).toBe('reconnecting');
    expect(await indicator().locator('.label').textContent()).toBe('Reconnecting');
    expect(await indicator().locator('.detail').textContent()).toMatch(
      /^(next try in \d+ s|trying now)/,
    );
    await t.page.getByTestId('not-live').waitFor();
    // Acknowledging needs the gateway: the alert keeps waiting, and the page says why.
    await pendingAlert(waiting).getByRole('button', { name: 'Acknowledge' }).click();
    await expect
      .poll(() => pendingAlert(waiting).getByTestId('ack-note').textContent())
      .toMatch(/^Not connected: you can acknowledge it once the connection is back/);
    await screenshot(t.page, 'dashboard-reconnecting.png');

    gw = await start('e2e-2', port);
    await allLive();
    await pendingAlert(waiting).getByTestId('ack-note').waitFor({ state: 'detached' });
    expect(await indicator().textContent()).toContain('via e2e-2');
    expect(await t.page.evaluate('window.marker')).toBe('same document');
    await t.page.getByTestId('not-live').waitFor({ state: 'detached' });
    const after = await prices();
    await expect.poll(prices, { timeout: 15_000 }).not.toEqual(after);

    // The new process has a new history: the alert waiting before the restart is still
    // raised, and the page says alerts published meanwhile may be missing.
    expect(await pendingAlert(waiting).count()).toBe(1);
    await pendingAlert('Risk alerts may be missing').first().waitFor({ timeout: 10_000 });
    await acknowledgeAll();
    // Its epoch is gone with the old process: nobody can acknowledge it any more.
    expect(
      await t.page
        .getByTestId('alert-history')
        .locator('li', { hasText: waiting })
        .getByTestId('outcome')
        .textContent(),
    ).toMatch(/^expired \d\d:\d\d:\d\d, not acknowledged$/);
    expect(t.problems.filter((p) => !EXPECTED_WHILE_DOWN.test(p))).toEqual([]);
  });

  it('stops saying Live when the server freezes without closing anything, and recovers when it resumes', async () => {
    await allLive();
    gw.child.kill('SIGSTOP');
    try {
      // Nothing arrives any more (no close, no ping): after ping interval + timeout the page
      // must not claim Live.
      await expect
        .poll(state, { timeout: 10_000, interval: 100 })
        .toMatch(/^(stale|reconnecting)$/);
      await t.page.getByTestId('not-live').waitFor();
      // Every account's positions are greyed out: their subscriptions still say live, but
      // the link is not confirmed, so the numbers may be old.
      for (const account of DEMO)
        expect(await t.page.getByTestId(`positions-${account}`).getAttribute('data-stale')).toBe(
          'true',
        );
    } finally {
      gw.child.kill('SIGCONT');
    }
    await allLive();
    await expect
      .poll(() => t.page.getByTestId('positions-DEMO1').getAttribute('data-stale'), {
        timeout: 10_000,
      })
      .toBe('false');
  });

  it('works on a phone-width screen, long alert and notice texts included', async () => {
    const phone = await browser.open({ width: 390, height: 844 });
    await phone.page.goto(`${gw.http}/#token=${token}`);
    await expect
      .poll(() => phone.page.getByTestId('connection').getAttribute('data-state'), {
        timeout: 10_000,
      })
      .toBe('connected');
    await phone.page.getByTestId('positions-DEMO1').locator('tbody tr').first().waitFor();
    // An alert without a message shows its data as JSON (no spaces), and a notice with a URL.
    await publishAlert('DEMO1', {
      level: 'critical',
      margin_level: 42,
      account_ref: 'x'.repeat(80),
    });
    await post(gw.http, '/api/v1/admin/broadcast', ADMIN_TOKEN, {
      type: 'system',
      message: `Status page: https://status.example.com/incidents/${'a1b2c3d4'.repeat(8)}`,
    });
    await phone.page.getByTestId('risk-alerts').waitFor({ timeout: 10_000 });
    await phone.page.getByTestId('system-notice').waitFor({ timeout: 10_000 });
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

describe(
  'risk alerts acknowledged through the gateway: two traders of one account, each on a device',
  {
    timeout: 90_000,
  },
  () => {
    const browser = useBrowser();
    const ACCOUNT = 'ACC7';
    let gw: Instance;

    beforeAll(async () => {
      ensureBuilt();
      // No demo feed: the only alerts on the account are the test's.
      gw = await startInstance('e2e-acks');
    }, 60_000);
    afterAll(() => killAll());

    const publishAlert = (message: string) =>
      post(gw.http, '/api/v1/publish', PUBLISH_TOKEN, {
        channel: `risk:${ACCOUNT}`,
        data: { level: 'critical', message },
      });
    /** A new device (its own storage) signed in as `sub`, its risk channel live. */
    const device = async (sub: string): Promise<TrackedPage> => {
      const token = await signToken({ sub, accounts: [ACCOUNT] });
      const p = await browser.open();
      await p.page.goto(`${gw.http}/#token=${token}`);
      await live(p.page);
      return p;
    };
    const live = (page: Page) =>
      expect
        .poll(() => page.getByTestId(`positions-${ACCOUNT}`).getAttribute('data-risk-state'), {
          timeout: 10_000,
        })
        .toBe('live');
    const waiting = (page: Page, text: string) =>
      page.getByTestId('risk-alerts').locator('li', { hasText: text });
    const outcome = (page: Page, text: string) =>
      page
        .getByTestId('alert-history')
        .locator('li', { hasText: text })
        .getByTestId('outcome')
        .textContent({ timeout: 10_000 });

    let first: TrackedPage;
    let second: TrackedPage;
    const message = `Margin call on ${ACCOUNT} ${Date.now()}`;

    it('clears an alert acknowledged on one device from every open page of the account at once, saying who', async () => {
      first = await device('trader-1');
      second = await device('trader-2');
      await publishAlert(message);
      for (const p of [first, second]) await waiting(p.page, message).waitFor({ timeout: 10_000 });
      // Set now, read after: still there means the second page did not reload.
      await second.page.evaluate("window.marker = 'same document'");

      await waiting(first.page, message).getByRole('button', { name: 'Acknowledge' }).click();
      for (const p of [first, second]) {
        await waiting(p.page, message).waitFor({ state: 'detached', timeout: 10_000 });
        expect(await outcome(p.page, message)).toMatch(/^ack \d\d:\d\d:\d\d by trader-1$/);
      }
      expect(await second.page.evaluate('window.marker')).toBe('same document');

      // The gateway holds the acknowledgement, not the browser; deliveries are counted once a
      // second.
      const alerts = async () => {
        const res = await fetch(`${gw.http}/api/v1/admin/alerts?state=all`, {
          headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        });
        return (await res.json()) as {
          unacked: number;
          alerts: { state: string; acked_by: string | null; deliveries: Record<string, number> }[];
        };
      };
      await expect
        .poll(async () => Object.keys((await alerts()).alerts[0]?.deliveries ?? {}).sort())
        .toEqual(['trader-1', 'trader-2']);
      const answer = await alerts();
      expect(answer.unacked).toBe(0);
      expect(answer.alerts).toHaveLength(1);
      expect(answer.alerts[0]).toMatchObject({ state: 'acked', acked_by: 'trader-1' });
    });

    it('does not show an acknowledged alert as waiting on a page opened afterwards', async () => {
      const still = `Still waiting on ${ACCOUNT} ${Date.now()}`;
      await publishAlert(still);
      const third = await device('trader-2');
      // Listed by the gateway as waiting: the list that leaves the acknowledged one out has come.
      await waiting(third.page, still).waitFor({ timeout: 10_000 });
      expect(await waiting(third.page, still).textContent()).toContain(
        'arrived while disconnected',
      );
      expect(await waiting(third.page, message).count()).toBe(0);
      await waiting(third.page, still).getByRole('button', { name: 'Acknowledge' }).click();
      for (const p of [first, second, third])
        await waiting(p.page, still).waitFor({ state: 'detached', timeout: 10_000 });
      expect(third.problems).toEqual([]);
    });

    it('raises an alert published while no page of the account was open at the next sign-in, on any device', async () => {
      for (const p of [first, second]) await p.page.goto('about:blank');
      const whileAway = `Published while every page was closed ${Date.now()}`;
      await publishAlert(whileAway);

      // The first trader's browser again (resumes with since), and the second on a new device.
      await first.page.goto(gw.http);
      await live(first.page);
      const fresh = await device('trader-2');
      for (const p of [first, fresh]) {
        await waiting(p.page, whileAway).waitFor({ timeout: 10_000 });
        expect(await waiting(p.page, whileAway).textContent()).toContain(
          'arrived while disconnected',
        );
      }
      await waiting(fresh.page, whileAway).getByRole('button', { name: 'Acknowledge' }).click();
      await waiting(first.page, whileAway).waitFor({ state: 'detached', timeout: 10_000 });
      expect(await outcome(first.page, whileAway)).toMatch(/ by trader-2$/);
      for (const p of [first, second, fresh]) expect(p.problems).toEqual([]);
    });
  },
);
