/**
 * A trader behind a proxy that strips WebSocket upgrades (RB-003 Step 4), in a real Chromium:
 * nginx running deploy/nginx/archon-ws.conf with the `Upgrade`/`Connection` lines of
 * /api/v1/ws broken, in front of two `archon-ws serve` instances in cluster mode on a Redis of
 * the test's own. The dashboard falls back to HTTP streaming, says so, stays live through a
 * restart of the instance holding its stream, and shows every signal published across the
 * restart exactly once, in order (docs/protocol.md#http-streaming-fallback).
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { screenshot, useBrowser, type TrackedPage } from '../support/browser.js';
import { ADMIN_TOKEN, PUBLISH_TOKEN, signToken } from '../support/gateway.js';
import {
  ensureBuilt,
  killAll,
  startInstance,
  startNginx,
  stopNginx,
  type Instance,
  type Nginx,
} from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';

/** A proxy that does not pass upgrades: the WebSocket handshake reaches the gateway as a
 * plain GET (404), as behind many corporate proxies. */
function stripUpgrades(conf: string): string {
  const broken = conf
    .replace(/proxy_set_header Upgrade \$http_upgrade;/g, 'proxy_set_header Upgrade "";')
    .replace(
      /proxy_set_header Connection \$connection_upgrade;/g,
      'proxy_set_header Connection "";',
    );
  if (broken === conf) throw new Error('the shipped nginx config no longer has the upgrade lines');
  return broken;
}

describe('dashboard behind a proxy that strips WebSocket upgrades', { timeout: 120_000 }, () => {
  const browser = useBrowser();
  let redis: TestRedis;
  const instances = new Map<string, Instance>();
  let nginx: Nginx;
  let t: TrackedPage;
  let published = 0;
  /** The instance being restarted, which takes no publishes. */
  let stopping: Instance | null = null;

  const env = () => ({
    ARCHON_REDIS_URL: redis.url,
    WEBSOCKET_PING_INTERVAL: '2',
    WEBSOCKET_PING_TIMEOUT: '1',
    WEBSOCKET_SHUTDOWN_TIMEOUT: '4',
  });

  beforeAll(async () => {
    ensureBuilt();
    redis = await startRedis({ maxSeconds: 600 });
    for (const id of ['edge-1', 'edge-2'])
      instances.set(id, await startInstance(id, { env: env() }));
    nginx = await startNginx(
      [...instances.values()].map((i) => i.port),
      { edit: stripUpgrades },
    );
    t = await browser.open();
  }, 60_000);
  afterAll(async () => {
    await stopNginx(nginx);
    killAll();
    await redis?.stop();
  });

  const indicator = () => t.page.getByTestId('connection');
  /** The symbols of the signals feed, oldest first. */
  const shownSignals = async () =>
    (await t.page.locator('[data-testid="signals"] li.signal strong').allTextContents()).reverse();
  const publishSignals = async (n: number) => {
    const events = Array.from({ length: n }, () => ({
      channel: 'signals',
      data: { symbol: `S${++published}`, action: 'buy' },
    }));
    // Straight to an instance (the publisher is not behind the trader's proxy), one that
    // stays up: the trading engine's publishes go to the instances that answer.
    const target = [...instances.values()].find((i) => i.child.exitCode === null && i !== stopping);
    if (!target) throw new Error('no instance left to publish to');
    const res = await fetch(`${target.http}/api/v1/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PUBLISH_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events }),
    });
    expect(res.status).toBe(200);
  };
  const expected = () => Array.from({ length: published }, (_, i) => `S${i + 1}`);

  it('cannot open a WebSocket through this proxy', async () => {
    const refused = await new Promise<number>((resolve, reject) => {
      const req = request(`${nginx.url}/api/v1/ws`, {
        headers: {
          upgrade: 'websocket',
          connection: 'Upgrade',
          'sec-websocket-version': '13',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        },
      });
      req.on('upgrade', () => reject(new Error('the proxy passed the upgrade')));
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(refused).toBe(404);
  });

  it('goes Live over HTTP streaming, says so, and shows signals as they are published', async () => {
    const token = await signToken({ sub: 'trader-9', accounts: ['ACC1'] });
    await t.page.goto(`${nginx.url}/#token=${token}`);
    await expect
      .poll(() => indicator().getAttribute('data-state'), { timeout: 30_000 })
      .toBe('connected');
    expect(await indicator().getAttribute('data-transport')).toBe('sse');
    await expect.poll(() => indicator().textContent()).toMatch(/HTTP streaming/i);
    await publishSignals(5);
    await expect.poll(shownSignals, { timeout: 10_000 }).toEqual(expected());
  });

  it('stays live through a restart of the instance holding its stream: every signal once, in order', async () => {
    const list = (await (
      await fetch(`${nginx.url}/api/v1/admin/websocket/connections`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      })
    ).json()) as { server: string; transport: string }[];
    const streams = list.filter((c) => c.transport === 'sse');
    expect(streams).toHaveLength(1);
    const holder = instances.get(streams[0]?.server as string) as Instance;
    expect(holder).toBeDefined();

    // Signals keep coming while the holder drains and exits.
    stopping = holder;
    holder.child.kill('SIGTERM');
    for (let i = 0; i < 10; i++) {
      await publishSignals(2);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await holder.exited;
    await publishSignals(3);

    await expect
      .poll(() => indicator().getAttribute('data-state'), { timeout: 30_000 })
      .toBe('connected');
    expect(await indicator().getAttribute('data-transport')).toBe('sse');
    await expect.poll(shownSignals, { timeout: 15_000 }).toEqual(expected());
    await screenshot(t.page, 'dashboard-fallback-after-restart.png');
    expect(t.problems.filter((p) => !/WebSocket connection to .* failed|404/.test(p))).toEqual([]);

    // The restarted instance serves again (nginx brings it back into rotation).
    instances.set(holder.id, await startInstance(holder.id, { env: env(), port: holder.port }));
    stopping = null;
  });
});
