/**
 * The operator console in a real Chromium against a real `archon-ws serve --demo` process:
 * it answers RB-003 Step 1 with the gateway's own figures, shows the risk alerts waiting for
 * acknowledgement and whose dashboards they reached, runs the runbook's actions behind a
 * confirmation, shows section 5's checklist, and says so when the gateway stops answering.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, PUBLISH_TOKEN, signToken } from '../support/gateway.js';
import { screenshot, useBrowser, type TrackedPage } from '../support/browser.js';
import { ensureBuilt, killAll, startInstance, type Instance } from '../support/processes.js';

async function status(gw: Instance): Promise<{ active_connections: number }> {
  const res = await fetch(`${gw.http}/api/v1/admin/websocket/status`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  return (await res.json()) as { active_connections: number };
}

describe('operator console (/ops)', { timeout: 90_000 }, () => {
  const browser = useBrowser();
  let gw: Instance;
  let dash: TrackedPage;
  let ops: TrackedPage;

  beforeAll(async () => {
    ensureBuilt();
    gw = await startInstance('ops-e2e', { args: ['--demo'] });
    // Two dashboards, so the console has connections to count.
    const token = await signToken({ sub: 'trader-1', accounts: ['DEMO1'] });
    dash = await browser.open();
    await dash.page.goto(`${gw.http}/#token=${token}`);
    const second = await browser.open();
    await second.page.goto(`${gw.http}/#token=${token}`);
    for (const p of [dash, second])
      await p.page
        .locator('[data-testid="connection"][data-state="connected"]')
        .waitFor({ timeout: 10_000 });
    ops = await browser.open();
    await ops.page.goto(`${gw.http}/ops#token=${ADMIN_TOKEN}`);
  }, 60_000);
  afterAll(() => killAll());

  const cardValue = (id: string) =>
    ops.page.getByTestId(`card-${id}`).locator('.value').textContent();

  it('shows the gateway’s own counts: active connections, peak, queue, instance, versions', async () => {
    await ops.page.getByTestId('card-active').waitFor({ timeout: 10_000 });
    const api = await status(gw);
    expect(api.active_connections).toBe(2);
    await expect.poll(() => cardValue('active'), { timeout: 10_000 }).toBe('2');
    expect(Number(await cardValue('peak'))).toBeGreaterThanOrEqual(2);
    expect(await cardValue('queue')).toMatch(/^\d+$/);
    expect(await ops.page.getByTestId('instances').textContent()).toContain('ops-e2e');
    const byVersion = await ops.page.getByTestId('group-client_version').textContent();
    expect(byVersion).toContain('archon-dashboard/0.1.0');
    const byServer = ops.page.getByTestId('group-server').locator('tbody tr', {
      hasText: 'ops-e2e',
    });
    expect(await byServer.locator('td').nth(1).textContent()).toBe('2');
    // Three charts of the last hour, drawn.
    for (const id of ['connections', 'messages', 'errors'])
      expect(await ops.page.getByTestId(`chart-${id}`).locator('canvas').count()).toBe(1);
  });

  it('shows a risk alert waiting for acknowledgement, whose dashboards it reached, until a trader acknowledges it', async () => {
    const message = `Console margin call ${Date.now()}`;
    const res = await fetch(`${gw.http}/api/v1/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PUBLISH_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ channel: 'risk:DEMO1', data: { level: 'critical', message } }),
    });
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as { results: { seq: number }[] };
    const seq = results[0]?.seq;
    const card = ops.page.getByTestId('alerts-waiting');
    // Account, seq, age, and the two dashboards of trader-1 it was delivered to.
    const row = card.locator('tbody tr').filter({
      has: ops.page.locator('td:nth-child(2)', { hasText: new RegExp(`^${seq}$`) }),
    });
    await expect
      .poll(() => row.textContent(), { timeout: 15_000 })
      .toMatch(/^DEMO1\d+\d+ s[^,]*trader-1 ×\d+$/);
    expect(Number(await card.getByTestId('alerts-count').textContent())).toBeGreaterThanOrEqual(1);
    expect(await card.getByTestId('alerts-oldest').textContent()).toMatch(
      /^the oldest waiting for \d+ s$/,
    );
    // Fresh: waiting, not yet past the 2 minutes of ArchonRiskAlertUnacknowledged.
    expect(await card.getAttribute('data-tone')).toBe('warn');

    const pending = dash.page.getByTestId('risk-alerts').locator('li', { hasText: message });
    await pending.getByRole('button', { name: 'Acknowledge' }).click();
    await row.waitFor({ state: 'detached', timeout: 15_000 });
  });

  it('says the risk alerts are not available from a gateway older than them (404), and shows the rest', async () => {
    const p = await browser.open();
    // What a gateway of an earlier release answers: no such route.
    await p.page.route('**/api/v1/admin/alerts?*', (route) =>
      route.fulfill({
        status: 404,
        contentType: 'application/json',
        body: JSON.stringify({
          error: { code: 'not_found', message: 'no route GET /api/v1/admin/alerts' },
        }),
      }),
    );
    await p.page.goto(`${gw.http}/ops#token=${ADMIN_TOKEN}`);
    const card = p.page.getByTestId('alerts-waiting');
    await card.waitFor({ timeout: 10_000 });
    expect(await card.getAttribute('data-state')).toBe('not-available');
    expect(await card.textContent()).toMatch(/Not available: this gateway has no GET/);
    expect(await p.page.getByTestId('freshness').getAttribute('data-state')).toBe('ok');
    expect(await p.page.getByTestId('card-active').locator('.value').textContent()).toMatch(
      /^\d+$/,
    );
  });

  it('shows RB-003 section 5 as a checklist', async () => {
    const items = ops.page.getByTestId('criteria').locator('li');
    expect(await items.count()).toBe(4);
    const text = await ops.page.getByTestId('criteria').textContent();
    for (const name of [
      'connections back to baseline',
      'error rate',
      'queue depth',
      'broadcast latency p99',
    ])
      expect(text).toContain(name);
    expect(await ops.page.getByTestId('criteria-summary').textContent()).toMatch(
      /^(all pass|\d of 4 fail)$/,
    );
  });

  it('runs cleanup only after confirmation and reports what it did; healthy dashboards stay live', async () => {
    const button = ops.page.locator('button[data-action="cleanup"]');
    await button.click();
    const dialog = ops.page.getByTestId('confirm');
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain('4010');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    expect(await ops.page.getByTestId('action-log').count()).toBe(0);

    await button.click();
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    const log = ops.page.getByTestId('action-log');
    await log.waitFor({ timeout: 10_000 });
    expect(await log.textContent()).toMatch(/cleanup removed 0 connections \(ops-e2e: 0\)/);
    expect(await dash.page.getByTestId('connection').getAttribute('data-state')).toBe('connected');
    expect((await status(gw)).active_connections).toBe(2);
  });

  it('broadcasts a notice that reaches the dashboards, and flushes queues', async () => {
    const message = `Console notice ${Date.now()}`;
    await ops.page.getByLabel('Notice text').fill(message);
    await ops.page.locator('button[data-action="broadcast"]').click();
    const dialog = ops.page.getByTestId('confirm');
    expect(await dialog.textContent()).toContain(message);
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await dash.page
      .getByTestId('system-notice')
      .filter({ hasText: message })
      .waitFor({ timeout: 10_000 });
    await expect
      .poll(() => ops.page.getByTestId('action-log').textContent())
      .toContain(`broadcast "${message}" to 2 connections on 1 server`);

    await ops.page.locator('button[data-action="flush"]').click();
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await expect
      .poll(() => ops.page.getByTestId('action-log').textContent())
      .toMatch(/flush emptied \d+ queued messages of \d+ clients/);
    await screenshot(ops.page, 'console.png');
    expect(ops.problems).toEqual([]);
  });

  it('fits a phone-width screen', async () => {
    const phone = await browser.open({ width: 390, height: 844 });
    await phone.page.goto(`${gw.http}/ops#token=${ADMIN_TOKEN}`);
    await phone.page.getByTestId('card-active').waitFor({ timeout: 10_000 });
    const overflow = await phone.page.evaluate(
      'document.documentElement.scrollWidth - document.documentElement.clientWidth',
    );
    expect(overflow).toBe(0);
    expect(phone.problems).toEqual([]);
  });

  it('signs out with the reason when the admin token is refused', async () => {
    const p = await browser.open();
    await p.page.goto(`${gw.http}/ops#token=adm_wrong`);
    await p.page.getByRole('alert').filter({ hasText: '401' }).waitFor({ timeout: 10_000 });
    await p.page.getByRole('heading', { name: 'Archon operator console' }).waitFor();
  });

  it('says the gateway is not answering when it stops, keeping the last figures marked as old', async () => {
    gw.child.kill('SIGKILL');
    await gw.exited;
    const freshness = ops.page.getByTestId('freshness');
    await expect
      .poll(() => freshness.getAttribute('data-state'), { timeout: 15_000 })
      .toBe('error');
    expect(await freshness.textContent()).toContain('Gateway not answering');
    expect(await ops.page.getByRole('alert').first().textContent()).toMatch(
      /unreachable.*figures below are from/,
    );
  });
});
