/**
 * How a benchmark client speaks archon.v1 to a target: natively over WebSocket, or wrapped in
 * Socket.IO packets for the `socketio` target (bench/socketio-server.js relays the same
 * messages as `m` events and reads ops from `op` events).
 *
 *   const d = dialect(target);
 *   const ws = new WebSocket(d.url(origin), d.protocols, options);
 *   ws.on('open', () => d.opened(ws, ready));    // ready(): the client may send its hello
 *   ws.on('message', (raw) => { const msg = d.read(ws, text, ready); if (msg) … });
 *   d.send(ws, { op: 'subscribe', … });
 */
const ARCHON = {
  url: (origin) => `${origin}/api/v1/ws`,
  protocols: ['archon.v1'],
  opened: (_ws, ready) => ready(),
  /** The archon message in a text frame (or null for a frame of the transport itself). */
  read: (_ws, text) => JSON.parse(text),
  send: (ws, op) => ws.send(JSON.stringify(op)),
};

// Engine.IO 4 packets: 0 open, 2 ping, 3 pong, 4 message; Socket.IO: 40 connect, 42 event.
const SOCKET_IO = {
  url: (origin) => `${origin}/socket.io/?EIO=4&transport=websocket`,
  protocols: [],
  opened: () => {}, // the Engine.IO open packet comes first
  read(ws, text, ready) {
    if (text.startsWith('42')) return JSON.parse(text.slice(2))[1];
    if (text === '2') ws.send('3');
    else if (text.startsWith('40')) ready();
    else if (text.startsWith('0')) ws.send('40');
    return null;
  },
  send: (ws, op) => ws.send(`42${JSON.stringify(['op', op])}`),
};

export function dialect(target) {
  return target === 'socketio' ? SOCKET_IO : ARCHON;
}
