/**
 * Runs every curl command of the RB-003 runbook (docs/runbooks/) against a live gateway, so
 * the runbook cannot drift from the product. Only the host and the token are adapted:
 * the runbook's hosts become the test gateway, and admin calls that omit the bearer header
 * get it.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from '../support/client.js';
import { eventually } from '../support/eventually.js';
import {
  ADMIN_TOKEN,
  publish,
  signToken,
  startGateway,
  type TestGateway,
} from '../support/gateway.js';
import { CLI, ensureBuilt, NODE } from '../support/processes.js';
import { TestStream } from '../support/sse.js';

const exec = promisify(execFile);
const RUNBOOK = resolve(import.meta.dirname, '../../docs/runbooks/RB-003-websocket-degradation.md');

/** Shell commands of the runbook's bash blocks that call curl. A command ends at the end of
 * a line where its single quotes balance and no `for … do` is left open. */
export function runbookCurlCommands(markdown: string): string[] {
  const blocks = [...markdown.matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  const commands: string[] = [];
  for (const block of blocks) {
    let current: string[] = [];
    for (const line of block.replace(/\\\n\s*/g, ' ').split('\n')) {
      const open = current.length > 0;
      if (!open && (line.trim() === '' || line.trim().startsWith('#'))) continue;
      current.push(line);
      const text = current.join('\n');
      const quotesBalanced = (text.match(/'/g)?.length ?? 0) % 2 === 0;
      const loopOpen = /\bdo\b/.test(text) && !/\bdone\b/.test(text);
      if (quotesBalanced && !loopOpen) {
        if (text.includes('curl ')) commands.push(text.trim());
        current = [];
      }
    }
  }
  return commands;
}

function adapt(cmd: string, base: string): string {
  let out = cmd
    .replaceAll('https://api.archon.ai', base)
    .replaceAll('wss://api.archon.ai', base.replace('http', 'ws'))
    .replace(/http:\/\/api-\$i:8000/g, base);
  // `watch -n 10 '…'` repeats a command: run it once.
  out = out.replace(/^watch -n \d+ '([\s\S]*)'$/, '$1');
  // The per-instance loop in Step 2 omits the admin token; the admin API always needs it.
  out = out.replace(
    /curl -s ("[^"]*\/api\/v1\/admin\/[^"]*")(?![^|]*Authorization)/g,
    'curl -s $1 -H "Authorization: Bearer $ADMIN_TOKEN"',
  );
  return out;
}

/** The runbook's `archon-ws …` command lines. */
export function runbookArchonCommands(markdown: string): string[] {
  const blocks = [...markdown.matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  return blocks.flatMap((b) => b.split('\n').filter((line) => line.startsWith('archon-ws ')));
}

async function run(
  cmd: string,
  env: Record<string, string> = {},
  options: { cwd?: string; timeoutMs?: number } = {},
): Promise<string> {
  const { stdout } = await exec('bash', ['-o', 'pipefail', '-c', cmd], {
    env: { ...process.env, ADMIN_TOKEN, ...env },
    timeout: options.timeoutMs ?? 15_000,
    ...(options.cwd !== undefined && { cwd: options.cwd }),
  });
  return stdout;
}

/** How long a runbook command holds a connection idle (`check-lb --idle 90s`), in ms. */
function idleMs(line: string): number {
  const m = /--idle (\d+)s?\b/.exec(line);
  return m ? Number(m[1]) * 1000 : 0;
}

describe('RB-003 commands against a live gateway', () => {
  let tg: TestGateway;
  let clients: TestClient[] = [];
  let commands: string[] = [];

  beforeAll(async () => {
    tg = await startGateway();
    commands = runbookCurlCommands(readFileSync(RUNBOOK, 'utf8')).map((c) => adapt(c, tg.http));
    const token = await signToken();
    clients = await Promise.all(
      [1, 2, 3].map(() => TestClient.authed(tg.ws, token, 'archon-dashboard/1.4.2')),
    );
    // Like live dashboards they answer pings: the runbook's commands take ~95 s, longer than
    // the gateway lets a silent client stay (ping interval + timeout).
    for (const c of clients)
      c.ws.on('message', (data: Buffer) => {
        if ((JSON.parse(data.toString('utf8')) as { type?: string }).type === 'ping')
          c.send({ op: 'pong' });
      });
    for (const c of clients) await c.subscribe('signals');
    await publish(tg, { channel: 'signals', data: { n: 1 } });
    await Promise.all(clients.map((c) => c.type('event')));
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await tg.stop();
  });

  const find = (needle: string) => {
    const cmd = commands.find((c) => c.includes(needle));
    if (!cmd) throw new Error(`runbook has no command containing ${needle}`);
    return cmd;
  };

  it('finds every curl command of the runbook', () => {
    // 2 in Manual Check/Step 1 status, 1 connections, 1 ws/health, 1 per-instance loop,
    // cleanup, flush, broadcast, the watch, 2 stats: all must be present.
    expect(commands.length).toBeGreaterThanOrEqual(11);
    for (const c of commands) expect(c).not.toContain('api.archon.ai');
  });

  it('Manual Check: status answers JSON', async () => {
    const status = JSON.parse(await run(commands[0] as string)) as Record<string, unknown>;
    expect(commands[0]).toMatch(/websocket\/status .*\| jq$/);
    expect(status.active_connections).toBe(3);
  });

  it('Step 1: active, peak and errors of the last hour', async () => {
    const out = JSON.parse(await run(find('peak_today'))) as Record<string, unknown>;
    expect(out).toEqual({
      active: 3,
      peak_today: 3,
      errors_last_hour: expect.any(Number) as number,
    });
  });

  it('Step 1: connection distribution by server', async () => {
    const out = JSON.parse(await run(find('group_by(.server)'))) as unknown;
    expect(out).toEqual([{ server: 'test-1', count: 3 }]);
  });

  it('Step 2: the WebSocket health check shows the upgrade headers', async () => {
    const out = await run(find('curl -I'));
    expect(out).toMatch(/^HTTP\/1\.1 200/);
    expect(out).toMatch(/^connection: Upgrade\r?$/im);
    expect(out).toMatch(/^upgrade: websocket\r?$/im);
  });

  it('Step 2: per-instance capacity loop prints each active count', async () => {
    const out = await run(find('for i in'));
    expect(out.trim().split('\n')).toEqual([
      'Instance 1:',
      '3',
      'Instance 2:',
      '3',
      'Instance 3:',
      '3',
    ]);
  });

  it('Fix A: cleanup answers how many connections it removed', async () => {
    const out = JSON.parse(await run(find('/cleanup'))) as Record<string, unknown>;
    expect(out).toEqual({ removed: 0, servers: { 'test-1': 0 } });
  });

  it('Fix B: queue flush answers what it flushed', async () => {
    const out = JSON.parse(await run(find('/queue/flush'))) as Record<string, unknown>;
    expect(out).toMatchObject({ flushed_messages: 0, clients: 0 });
  });

  it('Step 5: the broadcast reaches every dashboard', async () => {
    const out = JSON.parse(await run(find('/admin/broadcast'))) as Record<string, unknown>;
    expect(out).toEqual({ delivered: 3, servers: 1 });
    for (const c of clients) {
      expect(await c.type('system')).toMatchObject({ message: 'Please refresh your dashboard' });
    }
  });

  // `check-lb --idle 90s` really holds a connection silent for 90 s (that is what catches a
  // proxy's 60 s default): it runs beside the other commands, so this test takes ~95 s.
  it('runs every archon-ws command of the runbook successfully', async () => {
    ensureBuilt();
    const lines = runbookArchonCommands(readFileSync(RUNBOOK, 'utf8'));
    const subcommands = new Set(lines.map((l) => l.split(' ')[1]));
    expect([...subcommands].sort()).toEqual([
      'alerts',
      'broadcast',
      'check-lb',
      'cleanup',
      'connections',
      'doctor',
      'flush',
      'stats',
      'status',
      'test-connect',
      'verify',
    ]);
    // Files the commands write (`doctor --report incident.md`) land here, not in the repo.
    const cwd = mkdtempSync(join(tmpdir(), 'archon-runbook-'));
    const runLine = (line: string) =>
      run(
        line.replace(/^archon-ws /, '"$NODE" "$CLI" '),
        { NODE, CLI, ARCHON_URL: tg.http },
        { cwd, timeoutMs: 15_000 + idleMs(line) * 1.5 },
      ).then((out) => {
        // Each must exit 0 (verify: every criterion passes; doctor: no fault; check-lb: every
        // check passes, the idle hold included) and print something.
        expect(out.length, line).toBeGreaterThan(0);
        return out;
      });
    try {
      const holds = lines.filter((l) => idleMs(l) > 0).map(runLine);
      for (const line of lines.filter((l) => idleMs(l) === 0)) await runLine(line);
      const held = await Promise.all(holds);
      expect(held.length).toBeGreaterThan(0);
      for (const out of held) expect(out).toMatch(/^PASS\s+idle \d+ s\s+survived/m);
      expect(readFileSync(join(cwd, 'incident.md'), 'utf8')).toMatch(
        /^# Incident: WebSocket degradation \(RB-003\)/,
      );
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  }, 150_000);

  it('Verification: connection count, error rate and message rate', async () => {
    expect((await run(find('jq ".active_connections"'))).trim()).toBe('3');
    const errors = Number((await run(find("jq '.errors_per_minute'"))).trim());
    expect(Number.isFinite(errors)).toBe(true);
    const messages = Number((await run(find("jq '.messages_per_minute'"))).trim());
    expect(messages).toBeGreaterThan(0);
  });

  // Last: the stream raises today's peak to 4, against which `verify` (run above) would find
  // the three dashboards below the baseline.
  it('Step 4: counts the clients on the HTTP streaming fallback, in all and by address', async () => {
    const stream = await TestStream.welcomed(tg.http, { token: await signToken() });
    try {
      const status = JSON.parse(await run(find('sse: .sse_connections'))) as unknown;
      expect(status).toEqual({ active: 4, sse: 1 });
      const byAddr = JSON.parse(await run(find('select(.transport == "sse")'))) as unknown;
      expect(byAddr).toEqual([{ addr: expect.any(String) as string, count: 1 }]);
    } finally {
      stream.close();
    }
    await eventually(() => tg.gateway.connections.size === 3, 'the stream to close');
  });
});
