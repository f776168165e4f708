/** A raw HTTP streaming client for tests: a real GET /api/v1/sse read with fetch, every
 * message and `id:` kept in order, ops POSTed as the SDK does. */
import { createParser } from 'eventsource-parser';
import type { Message } from './client.js';

export interface StreamOptions {
  readonly token?: string;
  /** Query parameters: channels, since, client, deltas. */
  readonly query?: Record<string, string>;
  readonly lastEventId?: string;
  readonly headers?: Record<string, string>;
}

export class TestStream {
  readonly messages: Message[] = [];
  /** The `id:` of each message (undefined when it had none), parallel to `messages`. */
  readonly ids: (string | undefined)[] = [];
  comments = 0;
  status = 0;
  /** The body of a refused request. */
  refusal: { error?: { code?: string; message?: string } } | null = null;
  readonly ended: Promise<void>;
  private readonly abort = new AbortController();
  private waiters: { pred: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];
  private cursor = 0;
  private endedResolve: () => void = () => {};

  private constructor(private readonly base: string) {
    this.ended = new Promise((resolve) => (this.endedResolve = resolve));
  }

  /** Opens a stream; resolves once the response headers arrived (check `status`). */
  static async open(base: string, options: StreamOptions = {}): Promise<TestStream> {
    const stream = new TestStream(base);
    const url = new URL('/api/v1/sse', base);
    for (const [k, v] of Object.entries(options.query ?? {})) url.searchParams.set(k, v);
    const res = await fetch(url, {
      headers: {
        ...(options.token !== undefined && { authorization: `Bearer ${options.token}` }),
        ...(options.lastEventId !== undefined && { 'last-event-id': options.lastEventId }),
        ...options.headers,
      },
      signal: stream.abort.signal,
    });
    stream.status = res.status;
    if (res.status !== 200 || !res.body) {
      stream.refusal = (await res.json().catch(() => null)) as TestStream['refusal'];
      stream.endedResolve();
      return stream;
    }
    void stream.read(res.body);
    return stream;
  }

  /** Opens a stream and waits for its welcome. */
  static async welcomed(base: string, options: StreamOptions): Promise<TestStream> {
    const stream = await TestStream.open(base, options);
    if (stream.status !== 200)
      throw new Error(`HTTP ${stream.status}: ${JSON.stringify(stream.refusal)}`);
    await stream.type('welcome');
    return stream;
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const parser = createParser({
      onEvent: (event) => {
        const message = JSON.parse(event.data) as Message;
        this.messages.push(message);
        this.ids.push(event.id);
        this.waiters = this.waiters.filter((w) => {
          if (!w.pred(message)) return true;
          w.resolve(message);
          return false;
        });
      },
      onComment: () => {
        this.comments++;
      },
    });
    const decoder = new TextDecoder();
    try {
      for await (const chunk of body) parser.feed(decoder.decode(chunk, { stream: true }));
    } catch {
      // Aborted or cut: `ended` says so.
    }
    this.endedResolve();
  }

  get clientId(): string {
    const welcome = this.messages.find((m) => m.type === 'welcome');
    if (typeof welcome?.client_id !== 'string') throw new Error('stream has no welcome');
    return welcome.client_id;
  }

  /** The last `id:` the stream carried (what a reconnect sends as Last-Event-ID). */
  get lastEventId(): string | undefined {
    return this.ids.findLast((id) => id !== undefined);
  }

  /** POSTs ops for this stream; resolves with the status and body. */
  async post(
    ops: unknown,
    token: string,
    clientId = this.clientId,
    base = this.base,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(new URL(`/api/v1/sse/${clientId}`, base), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: typeof ops === 'string' ? ops : JSON.stringify(ops),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  next(pred: (m: Message) => boolean = () => true, timeoutMs = 5000): Promise<Message> {
    for (; this.cursor < this.messages.length; this.cursor++) {
      const m = this.messages[this.cursor] as Message;
      if (pred(m)) {
        this.cursor++;
        return Promise.resolve(m);
      }
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `no matching message within ${timeoutMs} ms; got ${JSON.stringify(this.messages.slice(-5))}`,
            ),
          ),
        timeoutMs,
      );
      this.waiters.push({
        pred,
        resolve: (m) => {
          clearTimeout(timer);
          this.cursor = this.messages.length;
          resolve(m);
        },
      });
    });
  }

  type(type: string, timeoutMs?: number): Promise<Message> {
    return this.next((m) => m.type === type, timeoutMs);
  }

  events(channel: string): Message[] {
    return this.messages.filter((m) => m.type === 'event' && m.channel === channel);
  }

  close(): void {
    this.abort.abort();
  }
}
