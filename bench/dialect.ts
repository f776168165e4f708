/**
 * How a benchmark client (bench/client.ts) speaks archon.v1 to a target: natively over
 * WebSocket, or wrapped in Socket.IO packets for the `socketio` target
 * (bench/socketio-server.ts relays the same messages as `m` events and reads ops from `op`
 * events).
 */
import type WebSocket from 'ws';
import type { ClientOp, ServerMessage } from '../src/protocol/index.js';
import { SUBPROTOCOL } from '../src/protocol/messages.ts';

export interface Dialect {
  /** The endpoint at an origin (ws://host:port). */
  url(origin: string): string;
  readonly protocols: readonly string[];
  /** The socket is open: `ready()` once the client may send its hello. */
  opened(ws: WebSocket, ready: () => void): void;
  /** The archon message in a text frame, or null for a frame of the transport itself. */
  read(ws: WebSocket, text: string, ready: () => void): ServerMessage | null;
  /** An op as the text frame to send. */
  encode(op: ClientOp): string;
}

const ARCHON: Dialect = {
  url: (origin) => `${origin}/api/v1/ws`,
  protocols: [SUBPROTOCOL],
  opened: (_ws, ready) => ready(),
  read: (_ws, text) => JSON.parse(text) as ServerMessage,
  encode: (op) => JSON.stringify(op),
};

// Engine.IO 4 packets: 0 open, 2 ping, 3 pong, 4 message; Socket.IO: 40 connect, 42 event.
const SOCKET_IO: Dialect = {
  url: (origin) => `${origin}/socket.io/?EIO=4&transport=websocket`,
  protocols: [],
  opened: () => {}, // the Engine.IO open packet comes first
  read(ws, text, ready) {
    if (text.startsWith('42')) return (JSON.parse(text.slice(2)) as [string, ServerMessage])[1];
    if (text === '2') ws.send('3');
    else if (text.startsWith('40')) ready();
    else if (text.startsWith('0')) ws.send('40');
    return null;
  },
  encode: (op) => `42${JSON.stringify(['op', op])}`,
};

/** The dialect of a target: Socket.IO for `socketio`, archon.v1 for every other. */
export function dialect(target?: string): Dialect {
  return target === 'socketio' ? SOCKET_IO : ARCHON;
}
