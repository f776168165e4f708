/**
 * Worker processes of the benchmarks: a coordinator (loadgen.ts's runLoad, abuse.ts, storm.ts,
 * soak.ts) forks them, configures each with its first message and talks to it over IPC; the
 * clients live in the workers so that the coordinator, which publishes and measures, stays
 * light. Here: both ends of that channel, and the steps every subscriber load shares (wait
 * until subscribed, start the window, drain).
 */
import { fork, type ChildProcess } from 'node:child_process';
import process from 'node:process';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'node:timers';
import { mergeCounts, now, sleep, type Counts } from './measure.ts';

/** A message between a coordinator and a worker: its `type` says what it is. */
export interface Message {
  readonly type: string;
}
/** A worker's config (its first message): it exits by itself after lifetimeMs. */
export interface WorkerConfig {
  readonly lifetimeMs: number;
}
/** What a worker sends while its clients connect: the coordinator logs it. */
export interface Progress extends Message {
  readonly connected: number;
  readonly failed: number;
  readonly [figure: string]: unknown;
}
/** What a worker sends once its clients are connected (or could not be). */
export interface Ready extends Message {
  readonly type: 'ready';
  readonly connected: number;
  readonly failed: number;
  readonly errors: Counts;
}

export interface Worker {
  readonly pid: number;
  readonly process: ChildProcess;
  /** Rejects when the worker exits. */
  readonly died: Promise<never>;
  /** Its last `progress` message. */
  readonly progress: Progress;
  /** Its next message of that type (rejects when it exits first, or after timeoutMs). */
  next<M extends Message>(type: M['type'], timeoutMs?: number): Promise<M>;
  /** Sends unless it is gone. */
  post(message: Message): void;
}

/** Worker processes alive in this process (killed by killWorkers on abrupt exit). */
const liveWorkers = new Set<ChildProcess>();
export function killWorkers(): void {
  for (const w of liveWorkers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
}

/**
 * Forks `script --worker <role>` (with this process's Node flags) and sends it `cfg`. Its
 * `fatal` messages are logged.
 */
export function forkWorker<C extends WorkerConfig>(
  script: string,
  role: string,
  cfg: C,
  log: (line: string) => void,
): Worker {
  const child = fork(script, ['--worker', role], {
    serialization: 'advanced',
    execPath: process.execPath,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  liveWorkers.add(child);
  const inbox: Message[] = [];
  const waiters: { type: string; resolve: (m: Message) => void }[] = [];
  let progress: Progress = { type: 'progress', connected: 0, failed: 0 };
  const died = new Promise<never>((_, reject) =>
    child.on('exit', (code, sig) => {
      liveWorkers.delete(child);
      reject(new Error(`${role} worker ${child.pid} exited (code ${code}, signal ${sig})`));
    }),
  );
  died.catch(() => {});
  child.on('message', (raw) => {
    const m = raw as Message;
    if (m.type === 'progress') {
      progress = m as Progress;
      return;
    }
    if (m.type === 'fatal') log(`${role} worker ${child.pid}: ${(m as Fatal).error}`);
    const i = waiters.findIndex((x) => x.type === m.type);
    if (i >= 0) waiters.splice(i, 1)[0]?.resolve(m);
    else inbox.push(m);
  });
  const worker: Worker = {
    pid: child.pid ?? 0,
    process: child,
    died,
    get progress() {
      return progress;
    },
    next<M extends Message>(type: M['type'], timeoutMs?: number): Promise<M> {
      const i = inbox.findIndex((m) => m.type === type);
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0] as M);
      const waits: Promise<M>[] = [
        new Promise<M>((resolve) => waiters.push({ type, resolve: (m) => resolve(m as M) })),
        died,
      ];
      let timer: NodeJS.Timeout | undefined;
      if (timeoutMs) {
        waits.push(
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`${role} worker: no ${type} after ${timeoutMs / 1000} s`)),
              timeoutMs,
            );
          }),
        );
      }
      return Promise.race(waits).finally(() => clearTimeout(timer));
    },
    post(message: Message) {
      if (child.connected) child.send(message);
    },
  };
  child.send(cfg);
  return worker;
}

/** Asks the workers to exit and kills those still alive 1 s later. */
export async function endWorkers(list: readonly Worker[]): Promise<void> {
  for (const w of list) w.post({ type: 'exit' });
  await Promise.race([Promise.allSettled(list.map((w) => w.died)), sleep(1000)]);
  for (const w of list)
    if (w.process.exitCode === null && w.process.signalCode === null) w.process.kill('SIGKILL');
}

/** A worker's share of the clients: how many, the id of its first, its handshakes in flight. */
export interface Share {
  readonly count: number;
  readonly idBase: number;
  readonly batch: number;
}
/** The share of `total` clients of each of n workers. */
export function shares(total: number, n: number, batch: number): Share[] {
  const per = Math.floor(total / n);
  return Array.from({ length: n }, (_, i) => ({
    count: i === n - 1 ? total - per * (n - 1) : per,
    idBase: i * per,
    batch: Math.max(1, Math.floor(batch / n)),
  }));
}

export interface ConnectFigures {
  requested: number;
  connected: number;
  failed: number;
  seconds: number;
  errors: Counts;
}
/**
 * Waits until every subscriber worker has reported `ready` (at most timeoutMs; progress logged
 * every 5 s); logs the outcome and throws when no client connected. `who`: what the clients
 * are called in the log.
 */
export async function awaitSubscribed(
  workers: readonly Worker[],
  o: {
    requested: number;
    t0: number;
    timeoutMs: number;
    log: (line: string) => void;
    who?: string;
  },
): Promise<ConnectFigures> {
  const who = o.who ?? 'client';
  const progress = setInterval(() => {
    const c = workers.reduce((a, w) => a + w.progress.connected, 0);
    const f = workers.reduce((a, w) => a + w.progress.failed, 0);
    o.log(`  connecting… ${c}/${o.requested} (${f} failed)`);
  }, 5000);
  let ready: Ready[];
  try {
    ready = await Promise.all(workers.map((w) => w.next<Ready>('ready', o.timeoutMs)));
  } finally {
    clearInterval(progress);
  }
  const connect = {
    requested: o.requested,
    connected: ready.reduce((a, r) => a + r.connected, 0),
    failed: ready.reduce((a, r) => a + r.failed, 0),
    seconds: (now() - o.t0) / 1000,
    errors: mergeCounts(ready.map((r) => r.errors)),
  };
  o.log(
    `  ${connect.connected}/${o.requested} ${who}s subscribed in ${connect.seconds.toFixed(1)} s` +
      (connect.failed ? ` — ${connect.failed} FAILED ${JSON.stringify(connect.errors)}` : ''),
  );
  if (connect.connected === 0) throw new Error(`no ${who} could connect`);
  return connect;
}

/** The timeline of a load (ms, wall clock): see startTimeline. */
export interface Timeline {
  tStart: number;
  A: number;
  B: number;
  stopAt: number;
}
/** `start`: the window, for the subscriber workers. */
export interface Start extends Message {
  readonly type: 'start';
  readonly base: number;
  readonly winA: number;
  readonly winB: number;
}
/**
 * Plans the run from now: publishing starts at tStart, the warm-up ends at A, the measured
 * window is [A, B), publishing stops at stopAt after the cool-down; tells the subscriber
 * workers (`start`).
 */
export function startTimeline(
  workers: readonly Worker[],
  o: { warmup: number; seconds: number; cooldown: number },
): Timeline {
  const tStart = now() + 200;
  const A = tStart + o.warmup * 1000;
  const B = A + o.seconds * 1000;
  const stopAt = B + o.cooldown * 1000;
  for (const w of workers) w.post({ type: 'start', base: tStart, winA: A, winB: B } as Start);
  return { tStart, A, B, stopAt };
}

/** `drain`: wait until every client has the acknowledged events, then send the `result`. */
export interface Drain extends Message {
  readonly type: 'drain';
  readonly acked: readonly number[];
  readonly timeoutMs: number;
}
/** Drains the subscriber workers against the acknowledged seqs → their `result` messages. */
export function drainWorkers<R extends Message>(
  workers: readonly Worker[],
  acked: readonly number[],
  drainSeconds: number,
): Promise<R[]> {
  return Promise.all(
    workers.map((w) => {
      w.post({ type: 'drain', acked, timeoutMs: drainSeconds * 1000 } as Drain);
      return w.next<R>('result', (drainSeconds + 20) * 1000);
    }),
  );
}

// -- in the worker

interface Fatal extends Message {
  readonly type: 'fatal';
  readonly error: string;
}

/** Sends a message to the coordinator (nothing when it is gone). */
export function toParent(message: Message): void {
  process.send?.(message);
}

/** The coordinator's messages after the config, to `handle`. */
export function fromParent<M extends Message>(handle: (message: M) => void): void {
  process.on('message', (m) => handle(m as M));
}

/**
 * Entry of a worker process: waits for its config (the parent's first message), then runs
 * main(cfg); a rejection is reported as `fatal` and ends the process. The process exits by
 * itself after cfg.lifetimeMs and when the parent is gone.
 */
export function workerEntry<C extends WorkerConfig>(main: (cfg: C) => unknown): void {
  process.on('disconnect', () => process.exit(0));
  process.once('message', (raw) => {
    const cfg = raw as C;
    setTimeout(() => process.exit(3), cfg.lifetimeMs).unref();
    Promise.resolve()
      .then(() => main(cfg))
      .catch((err: unknown) => {
        toParent({ type: 'fatal', error: describe(err) } as Fatal);
        process.exit(1);
      });
  });
}

/** An error's stack (or the thing thrown), for a log line. */
export function describe(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}
