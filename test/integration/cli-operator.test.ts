/**
 * The operator commands of `archon-ws` as a real process (the built CLI) against a real
 * gateway started in this process: RB-003's status, connections, stats, fixes, verify and
 * test-connect, the risk alerts waiting, their --json output, exit codes and one-line errors.
 */
import { spawn } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectOneLineError, runCli as cli } from '../support/cli.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import { ADMIN_TOKEN, expectExactly, publish, signToken } from '../support/gateway.js';
import {
  AlertsAnswerSchema,
  StatsAnswerSchema,
  StatusAnswerSchema,
} from '../../src/protocol/admin.js';
import type { AlertsAnswer, StatsAnswer, StatusAnswer } from '../../src/protocol/index.js';
import { CLI, ensureBuilt, NODE } from '../support/processes.js';
import { TestStream } from '../support/sse.js';

beforeAll(() => ensureBuilt(), 120_000);

describe('archon-ws operator commands', () => {
  const fx = useGateway();
  const env = () => ({ ARCHON_URL: fx.tg.http, ADMIN_TOKEN });
  const run = (args: string[]) => cli(args, env());

  it('exits quietly when the reader of its output stops early (status | head)', async () => {
    await fx.start();
    const child = spawn(NODE, [CLI, 'status'], {
      env: { PATH: process.env.PATH ?? '', ...env() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Like `head` that has read enough: the pipe is closed before the command writes.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('status shows active connections, peak and the instance row', async () => {
    await fx.start();
    await fx.authed({ sub: 'alice' });
    await fx.authed({ sub: 'bob' });

    const human = await run(['status']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^active connections\s+2 \/ 10000 max$/m);
    expect(human.stdout).toMatch(/^peak today\s+2 \(100 % of peak\)$/m);
    expect(human.stdout).toMatch(/^errors last hour\s+0$/m);
    expect(human.stdout).toMatch(/^queue depth\s+0$/m);
    expect(human.stdout).toMatch(/^memory\s+\d+\.\d MB rss/m);
    expect(human.stdout).toMatch(/^event-loop lag p99\s+[\d.]+ ms$/m);
    expect(human.stdout).toMatch(/^SERVER\s+ACTIVE\s+QUEUE\s+P99 MS\s+HEALTHY$/m);
    expect(human.stdout).toMatch(/^test-1\s+2\s+0\s+[\d.]+\s+yes$/m);
    expect(human.stdout).toMatch(/^missing instances: none$/m);

    const json = await run(['status', '--json']);
    expect(json.code).toBe(0);
    expect(json.stderr).toBe('');
    // The answer of GET /api/v1/admin/websocket/status as the gateway gave it, with
    // missing_instances always present.
    const s = JSON.parse(json.stdout) as StatusAnswer;
    expectExactly('status --json', StatusAnswerSchema, s);
    expect(s).toMatchObject({
      mode: 'embedded',
      active_connections: 2,
      peak_connections: 2,
      errors_last_hour: 0,
      queue_depth: 0,
      missing_instances: [],
      instances: [{ server: 'test-1', active_connections: 2, queue_depth: 0, healthy: true }],
    });
    expect(s.memory.rss_bytes).toBeGreaterThan(0);
    expect(s.unauthenticated_connections).toBe(0);
    expect(typeof s.broadcast_latency_p99_ms).toBe('number');
    expect(typeof s.event_loop_lag_p99_ms).toBe('number');
  });

  it('connections groups by server, client version and user', async () => {
    await fx.start();
    await fx.authed({ sub: 'alice' }, { client: 'dash/1.0' });
    await fx.authed({ sub: 'alice' }, { client: 'dash/2.0' });
    await fx.authed({ sub: 'bob' }, { client: 'dash/2.0' });

    const byServer = await run(['connections']);
    expect(byServer.code, byServer.stderr).toBe(0);
    expect(byServer.stdout).toMatch(/^SERVER\s+COUNT\s+SSE$/m);
    expect(byServer.stdout).toMatch(/^test-1\s+3\s+0$/m);
    expect(byServer.stdout).toMatch(/^total: 3$/m);

    const byVersion = await run(['connections', '--group-by', 'client_version', '--json']);
    expect(byVersion.code).toBe(0);
    expect(JSON.parse(byVersion.stdout)).toEqual([
      { client_version: 'dash/2.0', count: 2, sse: 0 },
      { client_version: 'dash/1.0', count: 1, sse: 0 },
    ]);

    const byUser = await run(['connections', '--group-by', 'user', '--json']);
    expect(JSON.parse(byUser.stdout)).toEqual([
      { user: 'alice', count: 2, sse: 0 },
      { user: 'bob', count: 1, sse: 0 },
    ]);

    const bad = await run(['connections', '--group-by', 'region']);
    expect(bad.code).toBe(2);
    expectOneLineError(bad);
  });

  it('status and connections show the clients on the HTTP streaming fallback', async () => {
    await fx.start();
    await fx.authed({ sub: 'alice' }, { client: 'dash/2.0' });
    const streams = await Promise.all(
      ['bob', 'carol'].map(async (sub) =>
        TestStream.welcomed(fx.tg.http, {
          token: await signToken({ sub }),
          query: { client: 'dash/2.0' },
        }),
      ),
    );
    try {
      const status = await run(['status']);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toMatch(
        /^sse connections\s+2 of 3, on the HTTP streaming fallback: their WebSocket upgrade does not get through \(RB-003 Step 4\)$/m,
      );
      expect(status.stdout).toMatch(/^SERVER\s+ACTIVE\s+SSE\s+QUEUE\s+P99 MS\s+HEALTHY$/m);
      expect(status.stdout).toMatch(/^test-1\s+3\s+2\s+0\s+[\d.]+\s+yes$/m);
      const json = JSON.parse((await run(['status', '--json'])).stdout) as StatusAnswer;
      expect([json.sse_connections, json.instances[0]?.sse_connections]).toEqual([2, 2]);

      const byTransport = await run(['connections', '--group-by', 'transport']);
      expect(byTransport.code, byTransport.stderr).toBe(0);
      expect(byTransport.stdout).toMatch(/^TRANSPORT\s+COUNT$/m);
      expect(byTransport.stdout).toMatch(/^sse\s+2$/m);
      expect(byTransport.stdout).toMatch(/^websocket\s+1$/m);
      expect(byTransport.stdout).toMatch(
        /^total: 3 \(2 on the HTTP streaming fallback: their WebSocket upgrade does not get through, RB-003 Step 4\)$/m,
      );
      const byUser = await run(['connections', '--group-by', 'user', '--json']);
      expect(JSON.parse(byUser.stdout)).toEqual([
        { user: 'alice', count: 1, sse: 0 },
        { user: 'bob', count: 1, sse: 1 },
        { user: 'carol', count: 1, sse: 1 },
      ]);
      const byVersion = await run(['connections', '--group-by', 'client_version']);
      expect(byVersion.stdout).toMatch(/^dash\/2\.0\s+3\s+2$/m);
    } finally {
      for (const s of streams) s.close();
    }
    // None left: the line and the column go.
    await eventually(() => fx.tg.gateway.connections.size === 1, 'the streams to close');
    const after = await run(['status']);
    expect(after.stdout).not.toMatch(/sse connections|SSE/);
  });

  it('stats shows rates, errors by type, disconnects by code and the series', async () => {
    await fx.start();
    const c = await fx.authed();
    c.send('not json');
    c.send('still not json'); // the second malformed message closes with 4400
    await c.closed;
    await eventually(() => fx.tg.gateway.connections.size === 0, 'the close to register');

    const json = await run(['stats', '--minutes', '2', '--json']);
    expect(json.code, json.stderr).toBe(0);
    // The stats answer as the gateway gave it.
    const s = JSON.parse(json.stdout) as StatsAnswer;
    expectExactly('stats --json', StatsAnswerSchema, s);
    expect(s).toMatchObject({
      minutes: 2,
      errors_per_minute: 1,
      connects_per_minute: 0.5,
      disconnects_per_minute: 0.5,
      errors_by_type: { invalid_json: 2 },
      disconnects_by_code: { '4400': 1 },
    });
    expect(s.series).toHaveLength(2);

    const human = await run(['stats', '--minutes', '2']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^errors\/min\s+1$/m);
    expect(human.stdout).toMatch(/^errors by type\s+invalid_json 2$/m);
    expect(human.stdout).toMatch(/^disconnects by code\s+4400 1$/m);
    expect(human.stdout).toMatch(/^MINUTE\s+CONNECTIONS\s+MESSAGES\s+ERRORS$/m);
    expect(human.stdout.match(/^\d{4}-\d\d-\d\dT\d\d:\d\dZ\s+\d+\s+\d+\s+\d+$/gm)).toHaveLength(2);

    const bad = await run(['stats', '--minutes', '61']);
    expect(bad.code).toBe(2);
    expectOneLineError(bad);
  });

  it('broadcast reaches a connected client and reports per server', async () => {
    await fx.start();
    const c = await fx.authed();
    const r = await run(['broadcast', 'Please refresh your dashboard']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/sent to 1 authenticated connection on 1 server/);
    const notice = await c.type('system');
    expect(notice.message).toBe('Please refresh your dashboard');

    const json = await run(['broadcast', 'again', '--json']);
    expect(JSON.parse(json.stdout)).toEqual({ delivered: 1, servers: 1, missing: [] });
  });

  it('cleanup and flush print what they did per server', async () => {
    await fx.start();
    await fx.authed();
    const cleanup = await run(['cleanup']);
    expect(cleanup.code, cleanup.stderr).toBe(0);
    expect(cleanup.stdout).toMatch(/nothing to clean/);
    expect(cleanup.stdout).toMatch(/^test-1\s+0$/m);
    const cleanupJson = await run(['cleanup', '--json']);
    expect(JSON.parse(cleanupJson.stdout)).toEqual({
      removed: 0,
      servers: { 'test-1': 0 },
      missing: [],
    });

    const flush = await run(['flush']);
    expect(flush.code, flush.stderr).toBe(0);
    expect(flush.stdout).toMatch(/dropped 0 queued messages from 0 clients/);
    expect(flush.stdout).toMatch(/^SERVER\s+DROPPED$/m);
    const flushJson = await run(['flush', '--json']);
    expect(JSON.parse(flushJson.stdout)).toEqual({
      flushed_messages: 0,
      clients: 0,
      servers: { 'test-1': 0 },
      missing: [],
    });
  });

  it('verify exits 0 on a healthy idle gateway', async () => {
    await fx.start();
    const r = await run(['verify']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^PASS\s+connections back to baseline\s+0 active, no baseline/m);
    expect(r.stdout).toMatch(/^PASS\s+error rate\s+0\/min over 5 min/m);
    expect(r.stdout).toMatch(/^PASS\s+queue depth\s+0/m);
    expect(r.stdout).toMatch(/^PASS\s+broadcast latency p99\s+[\d.]+ ms/m);
    expect(r.stdout).toMatch(/all success criteria pass/);
  });

  it('verify exits 1 when connections are below baseline and errors are high', async () => {
    await fx.start();
    // Three clients each send two malformed messages: 6 errors over 5 min = 1.2/min, and all
    // three are closed (4400), so active 0 of peak 3.
    const clients = await Promise.all([fx.authed(), fx.authed(), fx.authed()]);
    for (const c of clients) {
      c.send('x');
      c.send('y');
    }
    await Promise.all(clients.map((c) => c.closed));
    await eventually(() => fx.tg.gateway.connections.size === 0, 'the closes to register');

    const r = await run(['verify', '--json']);
    expect(r.code, r.stderr).toBe(1);
    const v = JSON.parse(r.stdout) as {
      ok: boolean;
      checks: { name: string; pass: boolean; value: number }[];
    };
    expect(v.ok).toBe(false);
    const by = Object.fromEntries(v.checks.map((c) => [c.name, c]));
    expect(by['connections back to baseline']).toMatchObject({ pass: false, value: 0 });
    expect(by['error rate']).toMatchObject({ pass: false, value: 1.2 });
    expect(by['queue depth']).toMatchObject({ pass: true, value: 0 });
    expect(by['broadcast latency p99']?.pass).toBe(true);

    const human = await run(['verify']);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/^FAIL\s+connections back to baseline\s+0 of peak 3 \(0 %\)/m);
    expect(human.stdout).toMatch(/^FAIL\s+error rate\s+1\.2\/min/m);
    expect(human.stdout).toMatch(/2 of 4 criteria fail/);
  });

  it('verify --watch repeats until its timeout and then fails', async () => {
    await fx.start();
    const c = await fx.authed();
    c.ws.terminate();
    await eventually(() => fx.tg.gateway.connections.size === 0, 'the close to register');
    const r = await run(['verify', '--watch', '--interval', '1s', '--timeout', '4s']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^round 1: failing: connections back to baseline 0 of peak 1/m);
    expect(r.stderr).toMatch(/^round 2: /m);
    expect(r.stdout).toMatch(/gave up after 4 s/);
  });

  it('test-connect reports handshake, echo round trip and the answering server', async () => {
    await fx.start();
    const human = await run(['test-connect']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^server\s+test-1$/m);
    expect(human.stdout).toMatch(/^handshake\s+[\d.]+ ms$/m);
    expect(human.stdout).toMatch(/^echo round trip\s+[\d.]+ ms$/m);

    const json = await cli(['test-connect', `${fx.tg.ws}/api/v1/ws/test`, '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      url: `${fx.tg.ws}/api/v1/ws/test`,
      server: 'test-1',
      handshake_ms: expect.any(Number) as number,
      echo_round_trip_ms: expect.any(Number) as number,
    });
  });

  it('alerts lists the risk alerts waiting, whose dashboards they reached, and the acknowledged ones with --state', async () => {
    const tg = await fx.start();
    const trader = await fx.authed({ sub: 'trader-7', accounts: ['ACC1'] });
    const { epoch } = await trader.subscribe('risk:ACC1');
    const none = await run(['alerts']);
    expect(none.code, none.stderr).toBe(0);
    expect(none.stdout).toBe('no risk alert waits for acknowledgement\n');

    for (const message of ['Margin level 95% on ACC1', 'Margin level 80% on ACC1'])
      expect((await publish(tg, { channel: 'risk:ACC1', data: { message } })).status).toBe(200);
    await trader.next((m) => m.type === 'event' && m.seq === 2);
    await eventually(async () => {
      const json = JSON.parse((await run(['alerts', '--json'])).stdout) as AlertsAnswer;
      return json.alerts.every((a) => a.deliveries['trader-7'] === 1);
    }, 'both deliveries to be counted');
    trader.send({
      op: 'ack',
      id: 'k1',
      channel: 'risk:ACC1',
      epoch,
      seq: 1,
    });
    await trader.next((m) => m.type === 'acked' && m.id === 'k1');

    const human = await run(['alerts']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(
      /^1 risk alert waiting for acknowledgement, the oldest for \d+ s$/m,
    );
    expect(human.stdout).toMatch(
      /^ACCOUNT\s+SEQ\s+AGE\s+STATE\s+ACKED BY\s+DELIVERED TO\s+MESSAGE$/m,
    );
    expect(human.stdout).toMatch(
      /^ACC1\s+2\s+\d+ s\s+unacked\s+-\s+trader-7 ×1\s+Margin level 80% on ACC1$/m,
    );
    expect(human.stdout).not.toMatch(/Margin level 95%/);

    const all = await run(['alerts', '--state', 'all']);
    expect(all.stdout).toMatch(
      /^ACC1\s+1\s+\d+ s\s+acked\s+trader-7\s+trader-7 ×1\s+Margin level 95% on ACC1$/m,
    );
    const json = await run(['alerts', '--state', 'acked', '--json']);
    expect(json.code).toBe(0);
    const answer = JSON.parse(json.stdout) as AlertsAnswer;
    expectExactly('alerts --json', AlertsAnswerSchema, answer);
    expect(answer).toMatchObject({ state: 'acked', unacked: 1 });
    expect(answer.alerts.map((a) => [a.seq, a.acked_by])).toEqual([[1, 'trader-7']]);

    const bad = await run(['alerts', '--state', 'waiting']);
    expect(bad.code).toBe(2);
    expectOneLineError(bad);
    expect(bad.stderr).toMatch(/--state must be one of unacked, acked, all \(got "waiting"\)/);
  });

  it('a wrong token exits 4 with one line and no stack trace', async () => {
    await fx.start();
    const r = await cli(['status'], { ARCHON_URL: fx.tg.http, ADMIN_TOKEN: 'wrong' });
    expect(r.code).toBe(4);
    expectOneLineError(r);
    expect(r.stderr).toMatch(/admin token refused .*401/);
  });

  it('a gateway with the admin API off exits 4', async () => {
    await fx.start({ ARCHON_ADMIN_TOKENS: '' });
    const r = await run(['verify']);
    expect(r.code).toBe(4);
    expectOneLineError(r);
    expect(r.stderr).toMatch(/admin API not available/);
  });
});

describe('archon-ws operator commands without a gateway', () => {
  it('an unreachable host exits 3 with one line', async () => {
    // Port 1 is privileged and closed: the connection is refused at once.
    for (const args of [['status'], ['verify'], ['broadcast', 'hi'], ['test-connect']]) {
      const r = await cli(args, { ARCHON_URL: 'http://127.0.0.1:9', ADMIN_TOKEN });
      expect(r.code, args.join(' ')).toBe(3);
      expectOneLineError(r);
      expect(r.stderr).toMatch(/cannot reach/);
    }
  });

  it('missing configuration and bad flags exit 2', async () => {
    const noUrl = await cli(['status'], { ADMIN_TOKEN });
    expect(noUrl.code).toBe(2);
    expectOneLineError(noUrl);
    expect(noUrl.stderr).toMatch(/ARCHON_URL/);

    const noToken = await cli(['status'], { ARCHON_URL: 'http://127.0.0.1:9' });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/ADMIN_TOKEN/);

    const unknown = await cli(['status', '--bogus'], { ARCHON_URL: 'http://127.0.0.1:9' });
    expect(unknown.code).toBe(2);
  });
});
