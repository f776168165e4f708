/**
 * One connection over HTTP streaming, for networks that strip the WebSocket upgrade
 * (docs/client.md#when-websocket-cannot-get-through): server messages arrive as server-sent
 * events on `GET /api/v1/sse`, ops leave as `POST /api/v1/sse/<client_id>` batches. Same shape
 * as the WebSocket Link (link-shape.ts), so the client runs both alike: a refusal, a stream cut
 * without the server's `close` message, or a POST the session never got, all end as a close
 * code, and nothing is called back once it is closed from our side.
 */
import { createParser, type EventSourceMessage, type ParseError } from 'eventsource-parser';
import {
  CloseCode,
  readErrorAnswer,
  SSE_MAX_OPS_PER_POST,
  SSE_PATH,
  type ClientOp,
} from '../protocol/index.js';
import { readServerMessage, type ClientLink, type LinkHandlers } from './link-shape.js';
import { refusalClose } from './sse-refusal.js';

/** A message this large without its end is not one: a proxy's garbage, treated as a cut. */
const MAX_MESSAGE_CHARS = 64 * 1024 * 1024;

export interface SseLinkOptions {
  /** The HTTP API's base URL, e.g. `https://api.archon.ai` (history.ts, httpBaseFromWs). */
  readonly base: string;
  /** The token to send, asked before each request: a token renewed in place is used at once. */
  readonly token: () => string;
  /** hello's `client`: the application's and the SDK's versions. */
  readonly client: string;
  /** Ask for state updates as deltas (`?deltas=1`, docs/protocol.md#deltas). */
  readonly deltas?: boolean;
  /** A POST not answered within this long counts as a lost connection, ms (default 10 000). */
  readonly postTimeoutMs?: number;
}

export class SseLink implements ClientLink {
  readonly transport = 'sse';
  private readonly abort = new AbortController();
  private readonly queue: ClientOp[] = [];
  private done = false;
  private streaming = false;
  private posting = false;
  /** From `welcome`: where POSTs go. Ops wait in the queue until it is known. */
  private clientId: string | null = null;

  /**
   * Throws when there is no global fetch; connects in the background otherwise, from a later
   * turn (as a WebSocket does): no handler runs before the constructor has returned.
   */
  constructor(
    private readonly options: SseLinkOptions,
    private readonly handlers: LinkHandlers,
  ) {
    if (typeof globalThis.fetch !== 'function') throw new Error('no global fetch');
    void Promise.resolve().then(() => this.run());
  }

  get open(): boolean {
    return this.streaming && !this.done;
  }

  /**
   * Queues an op; POSTed in order, one request at a time, with whatever queued meanwhile
   * (up to 32). `hello` and `pong` have no place here (the stream's request signs in; the
   * server never pings a stream): false.
   */
  send(op: ClientOp): boolean {
    if (this.done || op.op === 'hello' || op.op === 'pong') return false;
    this.queue.push(op);
    this.flush();
    return true;
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    this.queue.length = 0;
    this.abort.abort();
  }

  // --- the stream ----------------------------------------------------------------------------

  private async run(): Promise<void> {
    if (this.done) return;
    const query = new URLSearchParams({ client: this.options.client });
    if (this.options.deltas === true) query.set('deltas', '1');
    const url = `${base(this.options.base)}${SSE_PATH}?${query.toString()}`;
    let res: Response;
    try {
      res = await fetch(url, {
        headers: { authorization: `Bearer ${this.options.token()}`, accept: 'text/event-stream' },
        cache: 'no-store',
        signal: this.abort.signal,
      });
    } catch (err) {
      this.end(CloseCode.abnormal, `GET ${SSE_PATH}: ${describe(err)}`);
      return;
    }
    if (this.done) return;
    if (res.status !== 200) {
      const body = await res.text().catch(() => '');
      const refusal = refusalClose(res.status, body, res.headers.get('retry-after'));
      this.end(refusal.code, `GET ${SSE_PATH}: ${refusal.reason}`, refusal.retryAfterMs);
      return;
    }
    const type = res.headers.get('content-type') ?? '';
    if (!type.toLowerCase().startsWith('text/event-stream') || res.body === null) {
      // A 200 that is not a stream: a proxy's page, or a server that has no such endpoint.
      void res.body?.cancel().catch(() => {});
      this.end(CloseCode.abnormal, `GET ${SSE_PATH}: not an event stream (${type || 'no type'})`);
      return;
    }
    this.streaming = true;
    this.call(() => this.handlers.open());
    await this.read(res.body);
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const parser = createParser({
      onEvent: (event) => this.onEvent(event),
      onComment: () => {
        if (!this.done) this.call(() => this.handlers.heard?.());
      },
      onError: (error: ParseError) => {
        // Unknown fields and bad `retry:` values are ignored, as EventSource does.
        if (error.type === 'max-buffer-size-exceeded')
          this.end(CloseCode.abnormal, `the stream sent ${MAX_MESSAGE_CHARS} characters unended`);
      },
      maxBufferSize: MAX_MESSAGE_CHARS,
    });
    const reader = body.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (this.done) return;
        if (done) break;
        parser.feed(decoder.decode(value, { stream: true }));
        if (this.done) return;
      }
    } catch (err) {
      this.end(CloseCode.abnormal, `the stream broke: ${describe(err)}`);
      return;
    } finally {
      if (this.done) reader.cancel().catch(() => {});
    }
    this.end(CloseCode.abnormal, 'the stream ended without a close message');
  }

  private onEvent(event: EventSourceMessage): void {
    if (this.done) return;
    if (event.event !== undefined && event.event !== 'message') return;
    const message = readServerMessage(event.data);
    if (message === null) return;
    if (message.type === 'close') {
      // The server's last word: its close code, handled exactly like a WebSocket close.
      const { code, reason } = message as { code?: unknown; reason?: unknown };
      this.end(
        typeof code === 'number' && Number.isInteger(code) ? code : CloseCode.abnormal,
        typeof reason === 'string' ? reason : '',
      );
      return;
    }
    if (message.type === 'welcome' && typeof message.client_id === 'string') {
      this.clientId = message.client_id;
      this.flush();
    }
    this.call(() => this.handlers.message(message));
  }

  // --- ops -----------------------------------------------------------------------------------

  private flush(): void {
    if (this.posting || this.done || this.clientId === null || this.queue.length === 0) return;
    const batch = this.queue.splice(0, SSE_MAX_OPS_PER_POST);
    this.posting = true;
    void this.post(this.clientId, batch).then((goOn) => {
      this.posting = false;
      if (goOn) this.flush();
    });
  }

  /** One POST; true when the link goes on. Total: every failure ends in a close code. */
  private async post(clientId: string, batch: readonly ClientOp[]): Promise<boolean> {
    const path = `${SSE_PATH}/${encodeURIComponent(clientId)}`;
    const request = new AbortController();
    const cancel = () => request.abort();
    this.abort.signal.addEventListener('abort', cancel);
    const timeoutMs = this.options.postTimeoutMs ?? 10_000;
    const timer = setTimeout(cancel, timeoutMs);
    try {
      const res = await fetch(`${base(this.options.base)}${path}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${this.options.token()}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify(batch),
        signal: request.signal,
      });
      const text = await res.text();
      if (this.done) return false;
      if (res.status === 202) return true;
      if (res.status === 400) {
        // A bug of ours or the server's, not the network: report it and keep the link. The
        // batch is lost; what waits on it (a subscribe) learns it on the next reconnect.
        const error = readErrorAnswer(text);
        const ops = batch.map((op) => op.op).join(', ');
        const why = `POST ${SSE_PATH} refused ${ops}: ${error?.message || 'HTTP 400'}`;
        this.call(() => this.handlers.failed?.(error?.code ?? 'bad_request', why));
        return true;
      }
      if (res.status === 404) {
        // The stream this session belonged to is gone (sse_session_unknown).
        this.end(CloseCode.abnormal, `POST ${SSE_PATH}: ${refusalClose(404, text, null).reason}`);
        return false;
      }
      const refusal = refusalClose(res.status, text, res.headers.get('retry-after'));
      this.end(refusal.code, `POST ${SSE_PATH}: ${refusal.reason}`, refusal.retryAfterMs);
      return false;
    } catch (err) {
      // Lost or timed out: the ops may or may not have reached the session, so the link is
      // given up and the reconnect's resubscribe with since sets every channel straight.
      const why = request.signal.aborted ? `no answer within ${timeoutMs} ms` : describe(err);
      this.end(CloseCode.abnormal, `POST ${SSE_PATH}: ${why}`);
      return false;
    } finally {
      clearTimeout(timer);
      this.abort.signal.removeEventListener('abort', cancel);
    }
  }

  // --- ending --------------------------------------------------------------------------------

  /** Ends the link from the server's side or the network's: the one close callback. */
  private end(code: number, reason: string, retryAfterMs?: number): void {
    if (this.done) return;
    this.close();
    this.call(() => this.handlers.close(code, reason, retryAfterMs));
  }

  /** A handler that throws is reported like an event listener's error, not taken for a
   * broken stream. */
  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  }
}

function base(url: string): string {
  return url.replace(/\/+$/, '');
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // fetch's "fetch failed" says little; its cause says what (ECONNREFUSED…).
  const cause: unknown = err.cause;
  return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
}
