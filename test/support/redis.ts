/**
 * A throwaway redis-server for one test file: its own port, no persistence, so a restart
 * loses everything (what a Redis restart without persistence does to the backplane). The
 * machine's own Redis (6379) is never touched. The benchmarks (bench/README.md) start theirs
 * here too, with a bounded lifetime.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestRedis {
  readonly url: string;
  readonly port: number;
  /** The redis-server process now running (a new one after restart()). */
  pid(): number;
  /** What the server wrote (stdout and stderr), the last 8 KB. */
  log(): string;
  /** Kills the server (SIGKILL: a crash, not a clean shutdown) and waits for it to exit;
   * restart() can start it again. */
  stop(): Promise<void>;
  /** Kills the server if running and starts a new, empty one on the same port. */
  restart(): Promise<void>;
}

export interface RedisOptions {
  /** More redis-server arguments, e.g. ['--maxmemory-policy', 'noeviction']. */
  readonly args?: readonly string[];
  /**
   * The server exits by itself after this many seconds (it runs under timeout(1)), even
   * when this process is killed without a chance to stop it.
   */
  readonly maxSeconds?: number;
}

/** The machine's own Redis, if any: never started on, connected to or stopped. */
const RESERVED_PORT = 6379;
const START_TIMEOUT_MS = 10_000;
const LOG_LIMIT = 8000;

/** Every server started here and still running: killed when this process exits. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of running) kill(proc);
});

/** SIGKILL to the server, and to its timeout(1) wrapper with it (one process group). */
function kill(proc: ChildProcess): void {
  if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return;
  try {
    process.kill(proc.spawnargs[0] === 'timeout' ? -proc.pid : proc.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export async function startRedis(options: RedisOptions = {}): Promise<TestRedis> {
  let port = await freePort();
  while (port === RESERVED_PORT) port = await freePort();
  // An empty working directory, so nothing (dump, logs) lands in the repository.
  const dir = mkdtempSync(join(tmpdir(), 'archon-redis-'));
  let child: ChildProcess | null = null;
  let pid = 0;
  let output = '';
  let exited: Promise<void> = Promise.resolve();

  const launch = async (): Promise<void> => {
    mkdirSync(dir, { recursive: true });
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      ...(options.args ?? []),
    ];
    // timeout(1) makes itself the leader of a process group holding the server: kill() ends both.
    const proc =
      options.maxSeconds === undefined
        ? spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn('timeout', ['-s', 'KILL', String(options.maxSeconds), 'redis-server', ...args], {
            stdio: ['ignore', 'pipe', 'pipe'],
          });
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-LOG_LIMIT);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    running.add(proc);
    void exited.then(() => running.delete(proc));
    child = proc;
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await ping(port))) {
      if (proc.exitCode !== null || Date.now() > deadline) {
        kill(proc);
        throw new Error(`redis-server did not start on port ${port}: ${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    pid = options.maxSeconds === undefined ? (proc.pid ?? 0) : childOf(proc.pid ?? 0);
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    child = null;
    if (proc) kill(proc);
    await exited;
  };

  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: () => pid,
    log: () => output,
    async stop() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await stop();
      await launch();
    },
  };
}

/** The first child of a process (the server under its timeout(1) wrapper); Linux's /proc. */
function childOf(parent: number): number {
  const children = readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8').trim();
  return Number(children.split(/\s+/)[0]);
}

/** A port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True when a Redis answers PING on the port (raw RESP, no client library needed). */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let answer = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString();
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
  });
}
