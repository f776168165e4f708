/**
 * The reference servers of the benchmark: an HTTP server plus a bare `ws` broadcast loop
 * (BENCH_SEND=ws-send, the `bare` target), or the frame-once floor (BENCH_SEND=frame-once,
 * the `floor` target): the least a Node server can do per event, serialize and frame it once
 * and `socket.write` the same buffer to every subscriber.
 *
 * It speaks just enough of the archon.v1 protocol for the benchmarks' client (bench/client.ts) to work unchanged:
 *   - any WebSocket path; the first offered subprotocol is accepted;
 *   - {"op":"hello"} → {"type":"welcome",…}; {"op":"subscribe"} → {"type":"subscribed",…};
 *     everything else from clients is ignored (no auth, no ping timer, no queues, no history);
 *   - POST /api/v1/publish {"channel","data"} → the event is serialized ONCE and sent with
 *     `ws.send(buf)` (framed per client) or as one ready frame written to every subscriber's
 *     socket, then answered like the gateway;
 *   - GET /api/health → {"status":"ok"}.
 *
 * Env: BENCH_SEND (ws-send | frame-once; default ws-send), BENCH_DEFLATE=1 (ws-send only:
 * negotiate permessage-deflate with ws's defaults, context takeover on, so each message is
 * compressed per client; bench/deltas.ts measures what that costs), and those of
 * reference-http.ts.
 *
 *   node_modules/.bin/node bench/bare-server.ts        # with PORT=… in the environment
 */
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import process from 'node:process';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ClientOp, EventMessage } from '../src/protocol/index.js';
import {
  referenceHttp,
  serve,
  settings,
  subscribed as subscribedAnswer,
  welcome,
  type PublishResult,
} from './reference-http.ts';

const { port, host } = settings('bare-server');
const frameOnce = process.env.BENCH_SEND === 'frame-once';
const deflate = process.env.BENCH_DEFLATE === '1' && !frameOnce;
if (![undefined, 'ws-send', 'frame-once'].includes(process.env.BENCH_SEND)) {
  process.stderr.write('bare-server: BENCH_SEND is ws-send or frame-once\n');
  process.exit(2);
}

/** channel → { seq, subscribers: Set<WebSocket> (ws-send) or Set<net.Socket> (frame-once) } */
interface Channel {
  seq: number;
  subscribers: Set<WebSocket | Socket>;
}
const channels = new Map<string, Channel>();
function channel(name: string): Channel {
  let ch = channels.get(name);
  if (!ch) {
    ch = { seq: 0, subscribers: new Set() };
    channels.set(name, ch);
  }
  return ch;
}

// Events are text frames in the gateway protocol; a Buffer is sent as text with binary:false.
const TEXT = { binary: false };

function publish(name: string, data: unknown, key: string | null = null): PublishResult {
  const ch = channel(name);
  const seq = ++ch.seq;
  const event: EventMessage = {
    type: 'event',
    channel: name,
    seq,
    key,
    ts: Date.now(),
    data,
  };
  const buf = Buffer.from(JSON.stringify(event));
  if (frameOnce) {
    const frame = textFrame(buf);
    for (const socket of ch.subscribers as Set<Socket>) if (socket.writable) socket.write(frame);
  } else {
    for (const ws of ch.subscribers as Set<WebSocket>) ws.send(buf, TEXT);
  }
  return { channel: name, seq, epoch: 'bare' };
}

/** An unmasked, final text frame (RFC 6455 §5.2): server frames are the same for every client. */
function textFrame(payload: Buffer): Buffer {
  const n = payload.length;
  let head: Buffer;
  if (n < 126) head = Buffer.from([0x81, n]);
  else if (n < 65_536) head = Buffer.from([0x81, 126, n >> 8, n & 0xff]);
  else {
    head = Buffer.alloc(10);
    head[0] = 0x81;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  return Buffer.concat([head, payload]);
}

const server = referenceHttp(publish);
const wss = new WebSocketServer({ server, perMessageDeflate: deflate });
let nextClient = 0;
wss.on('connection', (ws, req) => {
  // frame-once writes to the socket itself (req.socket is the one ws reads and writes).
  const subscriber = frameOnce ? req.socket : ws;
  const subscribed = new Set<string>();
  ws.on('message', (raw, isBinary) => {
    if (isBinary) return;
    let msg: ClientOp | null;
    try {
      msg = JSON.parse((raw as Buffer).toString('utf8')) as ClientOp | null;
    } catch {
      return;
    }
    if (msg?.op === 'hello') {
      ws.send(JSON.stringify(welcome('bare', ++nextClient, { interval: 30, timeout: 10 })));
    } else if (msg?.op === 'subscribe' && typeof msg.channel === 'string') {
      const ch = channel(msg.channel);
      ch.subscribers.add(subscriber);
      subscribed.add(msg.channel);
      ws.send(JSON.stringify(subscribedAnswer('bare', msg, ch.seq)));
    }
  });
  ws.on('close', () => {
    for (const name of subscribed) channels.get(name)?.subscribers.delete(subscriber);
  });
  ws.on('error', () => {});
});

serve('bare-server', server, { port, host }, () => {
  server.close();
  for (const ws of wss.clients) ws.terminate();
  process.exit(0);
});
