/**
 * Idle memory per connection: N clients connect, authenticate and subscribe to 3 channels,
 * then stay silent; the server's RSS after minus before, divided by N, is what one idle
 * connection costs. Each target is a fresh server process on a free loopback port, measured
 * one after the other in alternating order per round.
 *
 *   node_modules/.bin/node bench/idle-memory.js [--clients 10000] [--rounds 3]
 *        [--only bare,archon] [--settle 5] [--timeout SECONDS]
 *
 * bare is bench/bare-server.js (a `ws` server that keeps a Set of subscribers per channel);
 * archon is `archon-ws serve` with every feature on (JWT auth, queues, history, metrics,
 * liveness). RSS is read from /proc/<pid>/status after `--settle` seconds of quiet, before
 * the clients connect and after they all hold their 3 subscriptions.
 */
import { randomBytes } from 'node:crypto';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import {
  distBuilt,
  environment,
  fx,
  freePort,
  median,
  runMain,
  saveResults,
  startServer,
  stopServer,
  table,
} from './common.js';
import { procRssMb, signToken } from './loadgen.js';

const { values: argv } = parseArgs({
  options: {
    clients: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '3' },
    only: { type: 'string', default: 'bare,archon' },
    settle: { type: 'string', default: '5' },
    timeout: { type: 'string' },
    'no-save': { type: 'boolean', default: false },
  },
});
const clients = Number(argv.clients);
const rounds = Number(argv.rounds);
const settle = Number(argv.settle);
const targets = argv.only.split(',');
const fail = (m) => {
  process.stderr.write(`idle-memory: ${m}\n`);
  process.exit(2);
};
if (!Number.isInteger(clients) || clients < 1 || clients > 15_000) fail('--clients: 1..15000');
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 9) fail('--rounds: 1..9');
if (!(settle >= 0 && settle <= 60)) fail('--settle: 0..60 seconds');
if (!targets.every((t) => t === 'bare' || t === 'archon')) fail('--only: bare, archon');
const CHANNELS = ['signals', 'positions:ACC1', 'risk:ACC1'];
const perTarget = 60 + clients / 200 + 2 * settle;
const hardBound = Number(argv.timeout ?? Math.ceil(rounds * targets.length * perTarget + 30));

/** Connects one client: hello, then the 3 subscriptions; resolves with its socket. */
function connect(url, token) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['archon.v1'], { perMessageDeflate: false });
    let waiting = CHANNELS.length;
    const timer = setTimeout(() => reject(new Error('client not subscribed within 30 s')), 30_000);
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.on('open', () => ws.send(JSON.stringify({ op: 'hello', token, client: 'idle-bench' })));
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      if (m.type === 'welcome')
        CHANNELS.forEach((channel, id) =>
          ws.send(JSON.stringify({ op: 'subscribe', id, channel })),
        );
      else if (m.type === 'subscribed' && --waiting === 0) {
        clearTimeout(timer);
        resolve(ws);
      } else if (m.type === 'error') reject(new Error(`${m.code}: ${m.message}`));
      else if (m.type === 'ping') ws.send('{"op":"pong"}');
    });
  });
}

async function measure(target, secrets) {
  const port = await freePort();
  const server = await startServer(target, port, secrets, {
    bound: Math.ceil(perTarget + 30),
    extraEnv: {
      WEBSOCKET_MAX_CONNECTIONS_PER_USER: '20000',
      WEBSOCKET_MAX_CONNECTIONS_PER_IP: '20000',
    },
  });
  try {
    await sleep(settle * 1000);
    const before = procRssMb(server.pid);
    const url = `ws://127.0.0.1:${port}/api/v1/ws`;
    const sockets = [];
    for (let i = 0; i < clients; i += 200) {
      const batch = Math.min(200, clients - i);
      sockets.push(
        ...(await Promise.all(Array.from({ length: batch }, () => connect(url, secrets.jwt)))),
      );
    }
    await sleep(settle * 1000);
    const after = procRssMb(server.pid);
    for (const ws of sockets) ws.terminate();
    const kbPer = ((after - before) * 1024) / clients;
    return { target, clients, rssBeforeMb: before, rssAfterMb: after, kbPerConnection: kbPer };
  } finally {
    await stopServer(server);
  }
}

runMain('idle-memory', hardBound, async () => {
  distBuilt();
  const started = new Date();
  const jwtSecret = randomBytes(32).toString('base64url');
  const secrets = {
    jwtSecret,
    jwt: await signToken(jwtSecret, 'bench-0', ['ACC1']),
    publishToken: randomBytes(24).toString('base64url'),
  };
  process.stderr.write(
    `idle memory: ${clients} clients × ${CHANNELS.length} subscriptions, ${rounds} round(s), targets ${targets.join(', ')}\n`,
  );
  const results = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? targets : [...targets].reverse();
    for (const target of order) {
      const m = { round: r + 1, ...(await measure(target, secrets)) };
      results.push(m);
      process.stderr.write(
        `round ${m.round} ${target}: RSS ${fx(m.rssBeforeMb, 1)} → ${fx(m.rssAfterMb, 1)} MB, ${fx(m.kbPerConnection, 1)} KB per connection\n`,
      );
    }
  }
  const summary = Object.fromEntries(
    targets.map((t) => [
      t,
      median(results.filter((m) => m.target === t).map((m) => m.kbPerConnection)),
    ]),
  );
  process.stdout.write(
    `${table(
      [
        ['round', 5, (m) => m.round],
        ['server', 7, (m) => m.target],
        ['RSS before MB', 14, (m) => fx(m.rssBeforeMb, 1)],
        ['RSS after MB', 13, (m) => fx(m.rssAfterMb, 1)],
        ['KB per connection', 18, (m) => fx(m.kbPerConnection, 1)],
      ],
      results,
    )}\n\nmedian KB per idle connection: ${targets.map((t) => `${t} ${fx(summary[t], 1)}`).join(', ')}${
      summary.bare && summary.archon
        ? `; archon − bare ${fx(summary.archon - summary.bare, 1)} KB`
        : ''
    }\n`,
  );
  if (!argv['no-save'])
    saveResults('idle-memory-', started, { environment: environment(), clients, results, summary });
});
