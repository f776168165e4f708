/** A raw protocol client for tests: a real `ws` socket, every message kept in order. */
import WebSocket from 'ws';
import { rawText } from '../../src/server/inbound.js';

export type Message = Record<string, unknown> & { type?: string };

export class TestClient {
  readonly messages: Message[] = [];
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: { pred: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];
  private cursor = 0;

  constructor(url: string, options: WebSocket.ClientOptions & { protocols?: string[] } = {}) {
    const { protocols = ['archon.v1'], ...rest } = options;
    this.ws = new WebSocket(url, protocols, rest);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('unexpected-response', (_req, res) =>
        reject(new Error(`HTTP ${res.statusCode}`)),
      );
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.ws.on('error', () => {});
    this.ws.on('message', (data) => {
      const message = JSON.parse(rawText(data)) as Message;
      this.messages.push(message);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(message)) return true;
        w.resolve(message);
        return false;
      });
    });
  }

  static async connect(url: string, options?: WebSocket.ClientOptions): Promise<TestClient> {
    const client = new TestClient(url, options);
    await client.opened;
    return client;
  }

  /** Connects to /api/v1/ws and authenticates; resolves with the welcome. */
  static async authed(base: string, token: string, client = 'test/1.0'): Promise<TestClient> {
    const c = await TestClient.connect(`${base}/api/v1/ws`);
    c.send({ op: 'hello', token, client });
    await c.next((m) => m.type === 'welcome');
    return c;
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** The next message (after those already taken) matching pred. */
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

  /** Subscribes and resolves with the `subscribed` answer. */
  async subscribe(
    channel: string,
    since?: { epoch: string; seq: number },
    id = Math.floor(Math.random() * 1e9),
  ): Promise<Message> {
    this.send({ op: 'subscribe', id, channel, ...(since && { since }) });
    return this.next((m) => (m.type === 'subscribed' || m.type === 'error') && m.id === id);
  }

  events(channel: string): Message[] {
    return this.messages.filter((m) => m.type === 'event' && m.channel === channel);
  }

  close(): void {
    this.ws.close();
  }
}

/** The client id the gateway named in this client's welcome. */
export function clientId(c: TestClient): string {
  const welcome = c.messages.find((m) => m.type === 'welcome');
  if (typeof welcome?.client_id !== 'string') throw new Error('client has no welcome');
  return welcome.client_id;
}

/** The error messages this client received, in order. */
export function errorsOf(c: TestClient): Message[] {
  return c.messages.filter((m) => m.type === 'error');
}

/** The seq of each message. */
export function seqs(messages: Message[]): number[] {
  return messages.map((m) => m.seq as number);
}
