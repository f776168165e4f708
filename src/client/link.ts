/**
 * One WebSocket connection: JSON in and out, and no callback at all once it is closed from
 * our side (a dead link's late close event must not disturb its successor).
 */
import { SUBPROTOCOL, type ClientOp } from '../protocol/index.js';
import { readServerMessage, type ClientLink, type LinkHandlers } from './link-shape.js';

const OPEN = 1;

export class Link implements ClientLink {
  readonly transport = 'websocket';
  private readonly ws: WebSocket;
  private done = false;

  /** Throws (SyntaxError) when the URL cannot be opened. */
  constructor(url: string, handlers: LinkHandlers) {
    this.ws = new WebSocket(url, SUBPROTOCOL);
    this.ws.onopen = () => {
      if (!this.done) handlers.open();
    };
    this.ws.onmessage = (ev: MessageEvent) => {
      if (this.done) return;
      const message = readServerMessage(ev.data);
      if (message) handlers.message(message);
    };
    this.ws.onclose = (ev: CloseEvent) => {
      if (this.done) return;
      this.done = true;
      handlers.close(ev.code, ev.reason);
    };
    // An error is always followed by a close, which carries what the client acts on.
    this.ws.onerror = () => {};
  }

  get open(): boolean {
    return !this.done && this.ws.readyState === OPEN;
  }

  send(op: ClientOp): boolean {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(op));
    return true;
  }

  /** Closes from our side; the handlers are not called any more. */
  close(code = 1000, reason = ''): void {
    if (this.done) return;
    this.done = true;
    try {
      this.ws.close(code, reason);
    } catch {
      // Already closing: nothing left to do.
    }
  }
}
