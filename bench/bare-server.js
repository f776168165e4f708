/**
 * The reference server of the benchmark: an HTTP server plus a bare `ws` broadcast loop.
 *
 * It speaks just enough of the archon.v1 protocol for bench/loadgen.js to work unchanged:
 *   - any WebSocket path; the first offered subprotocol is accepted;
 *   - {"op":"hello"} → {"type":"welcome",…}; {"op":"subscribe"} → {"type":"subscribed",…};
 *     everything else from clients is ignored (no auth, no ping timer, no queues, no history);
 *   - POST /api/v1/publish {"channel","data"} → the event is serialized ONCE and sent with
 *     `ws.send(buf)` to every subscriber of the channel, then answered like the gateway;
 *   - GET /api/health → {"status":"ok"}.
 *
 * Env: PORT (required), HOST (default 127.0.0.1), BENCH_MAX_SECONDS (exits by itself after
 * that long; default 900), BENCH_PARENT_PID (exits when that process is gone).
 *
 *   node_modules/.bin/node bench/bare-server.js        # with PORT=… in the environment
 */
import { Buffer } from 'node:buffer';
import http from 'node:http';
import process from 'node:process';
import { setInterval, setTimeout } from 'node:timers';
import { WebSocketServer } from 'ws';

const port = Number(process.env.PORT);
const host = process.env.HOST || '127.0.0.1';
const maxSeconds = Number(process.env.BENCH_MAX_SECONDS || 900);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write('bare-server: set PORT to a port number\n');
  process.exit(2);
}

/** channel → { seq, subscribers: Set<WebSocket> } */
const channels = new Map();
function channel(name) {
  let ch = channels.get(name);
  if (!ch) {
    ch = { seq: 0, subscribers: new Set() };
    channels.set(name, ch);
  }
  return ch;
}

// Events are text frames in the gateway protocol; a Buffer is sent as text with binary:false.
const TEXT = { binary: false };

function publish(name, data) {
  const ch = channel(name);
  const seq = ++ch.seq;
  const buf = Buffer.from(
    JSON.stringify({ type: 'event', channel: name, seq, key: null, ts: Date.now(), data }),
  );
  for (const ws of ch.subscribers) ws.send(buf, TEXT);
  return { channel: name, seq, epoch: 'bare' };
}

function reply(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/api/health') {
    reply(res, 200, { status: 'ok' });
    return;
  }
  if (req.method === 'POST' && req.url === '/api/v1/publish') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        reply(res, 400, { error: 'bad_json' });
        return;
      }
      if (!body || typeof body.channel !== 'string' || !('data' in body)) {
        reply(res, 400, { error: 'bad_request' });
        return;
      }
      reply(res, 200, { results: [publish(body.channel, body.data)] });
    });
    return;
  }
  reply(res, 404, { error: 'not_found' });
});
server.keepAliveTimeout = 60_000;

const wss = new WebSocketServer({ server, perMessageDeflate: false });
let nextClient = 0;
wss.on('connection', (ws) => {
  const subscribed = new Set();
  ws.on('message', (raw, isBinary) => {
    if (isBinary) return;
    let msg;
    try {
      msg = JSON.parse(raw.toString('utf8'));
    } catch {
      return;
    }
    if (msg?.op === 'hello') {
      ws.send(
        JSON.stringify({
          type: 'welcome',
          client_id: `bare-${++nextClient}`,
          server: 'bare',
          ping_interval: 30,
          ping_timeout: 10,
          protocol: 1,
        }),
      );
    } else if (msg?.op === 'subscribe' && typeof msg.channel === 'string') {
      const ch = channel(msg.channel);
      ch.subscribers.add(ws);
      subscribed.add(msg.channel);
      ws.send(
        JSON.stringify({
          type: 'subscribed',
          id: msg.id,
          channel: msg.channel,
          epoch: 'bare',
          seq: ch.seq,
          recovered: true,
          replayed: 0,
        }),
      );
    }
  });
  ws.on('close', () => {
    for (const name of subscribed) channels.get(name)?.subscribers.delete(ws);
  });
  ws.on('error', () => {});
});

server.listen({ port, host, backlog: 4096 }, () => {
  process.stderr.write(`bare-server: listening on http://${host}:${port}\n`);
});

function stop() {
  server.close();
  for (const ws of wss.clients) ws.terminate();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// Bounded: never outlives the benchmark, even if the orchestrator died.
setTimeout(() => {
  process.stderr.write(`bare-server: BENCH_MAX_SECONDS=${maxSeconds} reached, exiting\n`);
  process.exit(3);
}, maxSeconds * 1000).unref();
// …and exits as soon as the benchmark that started it is gone.
const parent = Number(process.env.BENCH_PARENT_PID);
if (parent > 0) {
  setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      stop();
    }
  }, 1000).unref();
}
