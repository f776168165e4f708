/**
 * Socket.IO 4 as a benchmark target: the archon.v1 messages carried as Socket.IO events, one
 * room per channel, so bench/loadgen.js and bench/idle-memory.js drive it like the others.
 *
 *   - the client connects to /socket.io/?EIO=4&transport=websocket (no long-polling, no
 *     compression), joins the default namespace, then sends each op as an `op` event;
 *   - {"op":"hello"} → `m` {"type":"welcome",…}; {"op":"subscribe"} → the socket joins the
 *     room named after the channel, then `m` {"type":"subscribed",…};
 *   - POST /api/v1/publish {"channel","data"} → `io.to(channel).emit('m', event)`: Socket.IO
 *     encodes the packet once per broadcast and writes it to every socket of the room;
 *   - GET /api/health → {"status":"ok"}. Socket.IO's own heartbeat (ping every 25 s) is on.
 *
 * Env: those of reference-http.js.
 */
import process from 'node:process';
import { Server } from 'socket.io';
import { referenceHttp, serve, settings, subscribed, welcome } from './reference-http.js';

const { port, host } = settings('socketio-server');

/** channel → last seq */
const seqs = new Map();

function publish(channel, data) {
  const seq = (seqs.get(channel) ?? 0) + 1;
  seqs.set(channel, seq);
  io.to(channel).emit('m', { type: 'event', channel, seq, key: null, ts: Date.now(), data });
  return { channel, seq, epoch: 'socketio' };
}

// Socket.IO answers its own requests (it listens on the same server).
const server = referenceHttp(publish, (req) => req.url?.startsWith('/socket.io/'));
const io = new Server(server, {
  transports: ['websocket'],
  perMessageDeflate: false,
  serveClient: false,
});
let nextClient = 0;
io.on('connection', (socket) => {
  socket.on('op', (msg) => {
    if (msg?.op === 'hello') {
      socket.emit('m', welcome('socketio', ++nextClient, { interval: 25, timeout: 20 }));
    } else if (msg?.op === 'subscribe' && typeof msg.channel === 'string') {
      socket.join(msg.channel);
      socket.emit('m', subscribed('socketio', msg, seqs.get(msg.channel) ?? 0));
    }
  });
});

serve('socketio-server', server, { port, host }, () => {
  io.disconnectSockets(true);
  server.close();
  process.exit(0);
});
