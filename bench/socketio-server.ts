/**
 * Socket.IO 4 as a benchmark target: the archon.v1 messages carried as Socket.IO events, one
 * room per channel, so the benchmarks' client (bench/client.ts) drives it like the others.
 *
 *   - the client connects to /socket.io/?EIO=4&transport=websocket (no long-polling, no
 *     compression), joins the default namespace, then sends each op as an `op` event;
 *   - {"op":"hello"} → `m` {"type":"welcome",…}; {"op":"subscribe"} → the socket joins the
 *     room named after the channel, then `m` {"type":"subscribed",…};
 *   - POST /api/v1/publish {"channel","data"} → `io.to(channel).emit('m', event)`: Socket.IO
 *     encodes the packet once per broadcast and writes it to every socket of the room;
 *   - GET /api/health → {"status":"ok"}. Socket.IO's own heartbeat (ping every 25 s) is on.
 *
 * Env: those of reference-http.ts.
 */
import process from 'node:process';
import { Server } from 'socket.io';
import type { ClientOp, EventMessage } from '../src/protocol/index.js';
import {
  referenceHttp,
  serve,
  settings,
  subscribed,
  welcome,
  type PublishResult,
} from './reference-http.ts';

const { port, host } = settings('socketio-server');

/** channel → last seq */
const seqs = new Map<string, number>();

function publish(channel: string, data: unknown): PublishResult {
  const seq = (seqs.get(channel) ?? 0) + 1;
  seqs.set(channel, seq);
  const event: EventMessage = { type: 'event', channel, seq, key: null, ts: Date.now(), data };
  io.to(channel).emit('m', event);
  return { channel, seq, epoch: 'socketio' };
}

// Socket.IO answers its own requests (it listens on the same server).
const server = referenceHttp(publish, (req) => req.url?.startsWith('/socket.io/') ?? false);
const io = new Server(server, {
  transports: ['websocket'],
  perMessageDeflate: false,
  serveClient: false,
});
let nextClient = 0;
io.on('connection', (socket) => {
  socket.on('op', (msg: ClientOp | null) => {
    if (msg?.op === 'hello') {
      socket.emit('m', welcome('socketio', ++nextClient, { interval: 25, timeout: 20 }));
    } else if (msg?.op === 'subscribe' && typeof msg.channel === 'string') {
      void socket.join(msg.channel);
      socket.emit('m', subscribed('socketio', msg, seqs.get(msg.channel) ?? 0));
    }
  });
});

serve('socketio-server', server, { port, host }, () => {
  io.disconnectSockets(true);
  server.close();
  process.exit(0);
});
