/**
 * A tiny HTTP server on 127.0.0.1, port 0, that plays the gateway's streaming endpoints
 * (docs/protocol.md, GET /api/v1/sse and POST /api/v1/sse/<client_id>) the way a test tells
 * it to: streams written chunk by chunk, refusals, POSTs held, answered or refused. It records
 * every request, so a test can say what the SDK sent.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';

export interface FakeStream {
  readonly request: IncomingMessage;
  /** Writes raw bytes or text and waits until they are handed to the socket. */
  write(chunk: string | Buffer): Promise<void>;
  /** A message as the gateway frames it: `data: <json>\n\n`. */
  send(message: unknown): Promise<void>;
  /** Ends the response cleanly (a stream that ends without a close message). */
  end(): void;
  /** Cuts the connection. */
  destroy(): void;
  /** True once the client went away (it aborted the request). */
  readonly gone: boolean;
}

export interface FakePost {
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: unknown;
  /** Answers it (202 `{"accepted": n}` unless told otherwise). */
  answer(status?: number, body?: unknown, headers?: Record<string, string>): void;
  readonly answered: boolean;
}

export interface FakeSse {
  readonly base: string;
  /** Every GET of the stream that was accepted, in order. */
  readonly streams: FakeStream[];
  /** Every POST, in order; held (unanswered) when `holdPosts` is true. */
  readonly posts: FakePost[];
  /** How a GET is answered: null (the default) accepts it as a stream. */
  refuse: { status: number; body: string; headers?: Record<string, string> } | null;
  /** Leave POSTs unanswered until the test answers them. */
  holdPosts: boolean;
  /** The status and body automatic POST answers get (default 202). */
  postAnswer: { status: number; body: unknown };
}

/** A fake for the test (closed after it). */
export function useFakeSse(): () => Promise<FakeSse> {
  const servers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of servers.splice(0)) await close();
  });
  return async () => {
    const fake = await startFakeSse();
    servers.push(fake.close);
    return fake.fake;
  };
}

async function startFakeSse(): Promise<{ fake: FakeSse; close: () => Promise<void> }> {
  const responses = new Set<ServerResponse>();
  const fake: FakeSse = {
    base: '',
    streams: [],
    posts: [],
    refuse: null,
    holdPosts: false,
    postAnswer: { status: 202, body: null },
  };
  const server = createServer((req, res) => {
    responses.add(res);
    res.on('close', () => responses.delete(res));
    if (req.method === 'GET') onGet(fake, req, res);
    else onPost(fake, req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  (fake as { base: string }).base = `http://127.0.0.1:${port}`;
  const close = async () => {
    for (const res of responses) res.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  return { fake, close };
}

function onGet(fake: FakeSse, req: IncomingMessage, res: ServerResponse): void {
  if (fake.refuse) {
    res.writeHead(fake.refuse.status, {
      'content-type': 'application/json',
      ...fake.refuse.headers,
    });
    res.end(fake.refuse.body);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
  res.flushHeaders();
  res.socket?.setNoDelay(true);
  let gone = false;
  req.on('close', () => (gone = true));
  const write = (chunk: string | Buffer) =>
    new Promise<void>((resolve) => {
      if (res.destroyed || res.writableEnded) resolve();
      else res.write(chunk, () => resolve());
    });
  fake.streams.push({
    request: req,
    write,
    send: (message) => write(`data: ${JSON.stringify(message)}\n\n`),
    end: () => res.end(),
    destroy: () => res.destroy(),
    get gone() {
      return gone;
    },
  });
}

function onPost(fake: FakeSse, req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      body = null;
    }
    let answered = false;
    const post: FakePost = {
      url: req.url ?? '',
      headers: req.headers,
      body,
      answer(status = 202, answer?: unknown, headers = {}) {
        if (answered) return;
        answered = true;
        const text = JSON.stringify(answer ?? { accepted: Array.isArray(body) ? body.length : 0 });
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(text);
      },
      get answered() {
        return answered;
      },
    };
    fake.posts.push(post);
    if (!fake.holdPosts) post.answer(fake.postAnswer.status, fake.postAnswer.body ?? undefined);
  });
}
