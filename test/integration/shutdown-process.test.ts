/**
 * `archon-ws serve` as a real process (docs/protocol.md#server-shutdown,
 * docs/configuration.md): SIGTERM drains and exits 0 with clients closed 1012; a bad
 * configuration exits 2 with a message naming the variable, the value and what is allowed, and
 * no stack trace.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from '../support/client.js';
import { eventually } from '../support/eventually.js';
import { ADMIN_TOKEN, JWT_SECRET, PUBLISH_TOKEN, signToken } from '../support/gateway.js';
import { CLI, ensureBuilt, NODE, ROOT } from '../support/processes.js';
import { freePort } from '../support/redis.js';

interface Run {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `archon-ws serve` with only the given environment (nothing inherited but PATH). */
function serve(env: Record<string, string>, args: string[] = []): Run {
  const child = spawn(NODE, [CLI, 'serve', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

function logLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('archon-ws serve process', () => {
  const running: Run[] = [];
  const clients: TestClient[] = [];

  beforeAll(() => {
    ensureBuilt();
  }, 180_000);

  afterEach(async () => {
    for (const c of clients.splice(0)) c.ws.terminate();
    for (const run of running.splice(0)) {
      if (run.child.exitCode === null && run.child.signalCode === null) {
        run.child.kill('SIGKILL');
        await run.exited;
      }
    }
  });

  async function startServe(
    extra: Record<string, string> = {},
  ): Promise<{ run: Run; base: string }> {
    const port = await freePort();
    const run = serve({
      PORT: String(port),
      HOST: '127.0.0.1',
      ARCHON_SERVER_ID: 'proc-1',
      ARCHON_JWT_SECRET: JWT_SECRET,
      ARCHON_ADMIN_TOKENS: ADMIN_TOKEN,
      ARCHON_PUBLISH_TOKENS: PUBLISH_TOKEN,
      WEBSOCKET_SHUTDOWN_TIMEOUT: '3',
      LOG_LEVEL: 'info',
      ...extra,
    });
    running.push(run);
    await eventually(
      () => logLines(run.stdout()).some((l) => l.message === 'archon-ws listening'),
      `the gateway to listen (stderr: ${run.stderr()})`,
      { timeoutMs: 15_000 },
    );
    return { run, base: `127.0.0.1:${port}` };
  }

  it('drains on SIGTERM: the client is closed with 1012 and the process exits 0', async () => {
    const { run, base } = await startServe();
    const health = await fetch(`http://${base}/api/health`);
    expect(await health.json()).toMatchObject({ status: 'ok', server: 'proc-1' });
    const c = await TestClient.authed(`ws://${base}`, await signToken());
    clients.push(c);
    await c.subscribe('signals');
    const published = await fetch(`http://${base}/api/v1/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${PUBLISH_TOKEN}` },
      body: JSON.stringify({ channel: 'signals', data: { before: 'SIGTERM' } }),
    });
    expect(published.status).toBe(200);
    await c.type('event');

    run.child.kill('SIGTERM');
    const closed = await c.closed;
    expect(closed.code).toBe(1012);
    expect(await run.exited).toEqual({ code: 0, signal: null });
    const messages = logLines(run.stdout()).map((l) => l.message);
    expect(messages).toContain('Signal received');
    expect(messages).toContain('Shutdown complete');
    expect(run.stderr()).toBe('');
  });

  it('exits 0 on SIGTERM with no client connected', async () => {
    const { run, base } = await startServe();
    expect((await fetch(`http://${base}/api/health`)).status).toBe(200);
    run.child.kill('SIGTERM');
    expect(await run.exited).toEqual({ code: 0, signal: null });
  });

  it('drains and exits 0 on a SIGTERM that arrives as soon as it says it is listening', async () => {
    // The listening line is what a supervisor takes as "ready": from then on a SIGTERM must
    // drain and exit 0, not kill the process. The window is small, so the check is repeated,
    // each time signalling the moment the line is read.
    for (let attempt = 0; attempt < 12; attempt++) {
      const port = await freePort();
      const run = serve({
        PORT: String(port),
        HOST: '127.0.0.1',
        ARCHON_JWT_SECRET: JWT_SECRET,
        WEBSOCKET_SHUTDOWN_TIMEOUT: '3',
      });
      running.push(run);
      run.child.stdout?.on('data', () => {
        if (run.stdout().includes('archon-ws listening')) run.child.kill('SIGTERM');
      });
      expect(await run.exited, `attempt ${attempt}`).toEqual({ code: 0, signal: null });
    }
  }, 60_000);

  it('exits 2 on WEBSOCKET_PING_INTERVAL=abc naming the variable, the value and what is allowed, without a stack trace', async () => {
    const run = serve({ ARCHON_JWT_SECRET: JWT_SECRET, WEBSOCKET_PING_INTERVAL: 'abc' });
    running.push(run);
    expect(await run.exited).toEqual({ code: 2, signal: null });
    const stderr = run.stderr();
    expect(stderr).toContain('WEBSOCKET_PING_INTERVAL');
    expect(stderr).toContain('"abc"');
    expect(stderr).toContain('a number of seconds > 0 and ≤ 3600');
    expect(stderr).not.toMatch(/^\s+at /m);
    expect(stderr).not.toMatch(/Error:/);
  });

  it('exits 2 on a bad flag value the same way as on a bad variable', async () => {
    const run = serve({ ARCHON_JWT_SECRET: JWT_SECRET }, ['--max-connections', '0']);
    running.push(run);
    expect(await run.exited).toEqual({ code: 2, signal: null });
    const stderr = run.stderr();
    expect(stderr).toContain('WEBSOCKET_MAX_CONNECTIONS="0"');
    expect(stderr).toContain('an integer from 1 to 1000000');
    expect(stderr).not.toMatch(/^\s+at /m);
  });

  it('names every bad variable at once and never echoes a secret value', async () => {
    const run = serve({
      ARCHON_JWT_SECRET: 'tooShortSecretValue',
      WEBSOCKET_PING_TIMEOUT: '-1',
    });
    running.push(run);
    expect(await run.exited).toEqual({ code: 2, signal: null });
    const stderr = run.stderr();
    expect(stderr).toContain('ARCHON_JWT_SECRET');
    expect(stderr).toContain('WEBSOCKET_PING_TIMEOUT="-1"');
    expect(stderr).not.toContain('tooShortSecretValue');
    expect(stderr).not.toMatch(/^\s+at /m);
  });
});
