/**
 * The SDK's HTTP streaming link (src/client/sse-link.ts) against a tiny HTTP server on a real
 * socket (test/support/sse-fake.ts): messages across any chunking, comment heartbeats, the
 * server's close message, a cut stream, refusals as close codes, malformed input that must
 * not throw, and ops POSTed in order, one request at a time, in batches of at most 32.
 */
import { describe, expect, it } from 'vitest';
import type { LinkHandlers } from '../../src/client/link-shape.js';
import { SseLink, type SseLinkOptions } from '../../src/client/sse-link.js';
import type { ClientOp, ServerMessage } from '../../src/protocol/index.js';
import { eventually } from '../support/eventually.js';
import { useFakeSse, type FakeSse, type FakeStream } from '../support/sse-fake.js';

interface Recorded {
  readonly opened: number;
  readonly messages: ServerMessage[];
  readonly heard: number;
  readonly closes: { code: number; reason: string; retryAfterMs?: number }[];
  readonly failures: { code: string; message: string }[];
}

const WELCOME = {
  type: 'welcome',
  client_id: 'c_0123456789abcdef',
  server: 'fake-1',
  ping_interval: 30,
  ping_timeout: 10,
  protocol: 1,
  transport: 'sse',
};

const unsub = (id: number | string): ClientOp => ({ op: 'unsubscribe', id, channel: 'signals' });

function record(): { handlers: LinkHandlers; seen: Recorded } {
  const seen = { opened: 0, messages: [], heard: 0, closes: [], failures: [] } as {
    opened: number;
    messages: ServerMessage[];
    heard: number;
    closes: Recorded['closes'];
    failures: Recorded['failures'];
  };
  return {
    seen,
    handlers: {
      open: () => seen.opened++,
      message: (m) => seen.messages.push(m),
      heard: () => seen.heard++,
      close: (code, reason, retryAfterMs) =>
        seen.closes.push({ code, reason, ...(retryAfterMs !== undefined && { retryAfterMs }) }),
      failed: (code, message) => seen.failures.push({ code, message }),
    },
  };
}

describe('SSE link', () => {
  const fakeSse = useFakeSse();

  async function connect(
    options: Partial<SseLinkOptions> = {},
  ): Promise<{ fake: FakeSse; link: SseLink; seen: Recorded; stream: () => FakeStream }> {
    const fake = await fakeSse();
    const { handlers, seen } = record();
    const link = new SseLink(
      { base: fake.base, token: () => 'tok-1', client: 'test/1 archon-ws-client/0', ...options },
      handlers,
    );
    const stream = () => {
      const s = fake.streams[0];
      if (!s) throw new Error('no stream yet');
      return s;
    };
    return { fake, link, seen, stream };
  }

  async function welcomed(options: Partial<SseLinkOptions> = {}) {
    const c = await connect(options);
    await eventually(() => c.fake.streams.length === 1 && c.seen.opened === 1, 'the stream');
    await c.stream().send(WELCOME);
    await eventually(() => c.seen.messages.length === 1, 'the welcome');
    return c;
  }

  it('signs in with the token in the Authorization header, never in the URL, and names the client', async () => {
    const { fake, stream } = await connect({ token: () => 'secret-token' });
    await eventually(() => fake.streams.length === 1, 'the stream request');
    const req = stream().request;
    expect(req.headers.authorization).toBe('Bearer secret-token');
    expect(req.headers.accept).toBe('text/event-stream');
    const url = new URL(req.url ?? '', fake.base);
    expect(url.pathname).toBe('/api/v1/sse');
    expect(url.searchParams.get('client')).toBe('test/1 archon-ws-client/0');
    expect(req.url).not.toContain('secret-token');
  });

  it('delivers every message whole, however the stream is cut into chunks', async () => {
    const { seen, stream } = await welcomed();
    const event = {
      type: 'event',
      channel: 'signals',
      seq: 1,
      key: null,
      ts: 1,
      data: { note: 'price in € and ¥' },
    };
    const bytes = Buffer.from(`id: signals@e1:1\ndata: ${JSON.stringify(event)}\n\n`, 'utf8');
    // One byte at a time: lines, the blank line and the multi-byte characters all split.
    for (let i = 0; i < bytes.length; i++) await stream().write(bytes.subarray(i, i + 1));
    const second = { ...event, seq: 2 };
    const both = `data: ${JSON.stringify(second)}\r\n\r\ndata: ${JSON.stringify({ ...event, seq: 3 })}\n\n`;
    await stream().write(both);
    await eventually(() => seen.messages.length === 4, 'three events');
    expect(seen.messages.slice(1)).toEqual([event, second, { ...event, seq: 3 }]);
  });

  it('counts comment lines as heard, and never as messages', async () => {
    const { seen, stream } = await welcomed();
    await stream().write(':\n\n');
    await stream().write(': keepalive 2\n\n');
    await eventually(() => seen.heard === 2, 'two heartbeats');
    expect(seen.messages).toHaveLength(1);
    expect(seen.closes).toEqual([]);
  });

  it('ignores malformed lines and JSON and carries on with the next message', async () => {
    const { seen, stream } = await welcomed();
    await stream().write('data: not json\n\n');
    await stream().write('data: 42\n\n');
    await stream().write('data: {"no":"type"}\n\n');
    await stream().write('data: {"type":\ndata: "system"}\n\n'); // two data lines: joined by \n
    await stream().write('bogus-field: 1\nretry: soon\n\n');
    await stream().write('event: other\ndata: {"type":"system","message":"x","ts":1}\n\n');
    await stream().write('data: {"type":"close"\n\n');
    await stream().send({ type: 'system', message: 'still here', ts: 2 });
    await eventually(() => seen.messages.length >= 3, 'the valid messages');
    expect(seen.messages.slice(1)).toEqual([
      { type: 'system' },
      { type: 'system', message: 'still here', ts: 2 },
    ]);
    expect(seen.closes).toEqual([]);
  });

  it('ends with the code and reason of the server close message, and calls nothing after', async () => {
    const { seen, stream } = await welcomed();
    await stream().write(
      `data: ${JSON.stringify({ type: 'close', code: 4008, reason: 'queue full' })}\n\ndata: ${JSON.stringify({ type: 'system', message: 'late', ts: 1 })}\n\n:\n\n`,
    );
    await eventually(() => seen.closes.length === 1, 'the close');
    expect(seen.closes).toEqual([{ code: 4008, reason: 'queue full' }]);
    await eventually(() => stream().gone, 'the request aborted');
    expect(seen.messages).toHaveLength(1);
    expect(seen.heard).toBe(0);
  });

  it('reports a stream that ends without a close message as 1006', async () => {
    const { seen, stream } = await welcomed();
    stream().end();
    await eventually(() => seen.closes.length === 1, 'the close');
    expect(seen.closes[0]).toMatchObject({
      code: 1006,
      reason: expect.stringMatching(/without a close/) as unknown,
    });
  });

  it('reports a connection cut mid-stream as 1006', async () => {
    const { seen, stream } = await welcomed();
    await stream().write('data: {"type":"sys');
    stream().destroy();
    await eventually(() => seen.closes.length === 1, 'the close');
    expect(seen.closes[0]?.code).toBe(1006);
    expect(seen.messages).toHaveLength(1);
  });

  it('reports a server that cannot be reached as 1006', async () => {
    const { handlers, seen } = record();
    new SseLink({ base: 'http://127.0.0.1:1', token: () => 't', client: 'c' }, handlers);
    await eventually(() => seen.closes.length === 1, 'the close');
    expect(seen.closes[0]?.code).toBe(1006);
    expect(seen.opened).toBe(0);
  });

  it('calls no handler before its constructor has returned, even when the token cannot be read', async () => {
    const { handlers, seen } = record();
    let link: SseLink | null = null;
    const closedAfterConstruction: boolean[] = [];
    link = new SseLink(
      {
        base: 'http://127.0.0.1:1',
        token: () => {
          throw new Error('no token');
        },
        client: 'c',
      },
      {
        ...handlers,
        close: (code, reason) => {
          closedAfterConstruction.push(link !== null);
          handlers.close(code, reason);
        },
      },
    );
    await eventually(() => seen.closes.length === 1, 'the close');
    expect(closedAfterConstruction).toEqual([true]);
    expect(seen.closes[0]).toMatchObject({
      code: 1006,
      reason: expect.stringMatching(/no token/) as unknown,
    });
  });

  it.each([
    [401, { code: 'token_expired', message: 'token expired' }, {}, 4001, undefined],
    [403, { code: 'origin_not_allowed', message: 'origin' }, {}, 1008, undefined],
    [403, { code: 'forbidden', message: 'no' }, {}, 4003, undefined],
    [429, { code: 'ip_connection_limit', message: 'too many' }, { 'retry-after': '3' }, 1013, 3000],
    [503, { code: 'draining', message: 'bye' }, { 'retry-after': '1' }, 1012, 1000],
    [503, { code: 'at_capacity', message: 'full' }, { 'retry-after': '5' }, 1013, 5000],
    [400, { code: 'bad_request', message: 'bad since' }, {}, 4400, undefined],
    [404, { code: 'not_found', message: 'not found' }, {}, 1006, undefined],
    [502, null, {}, 1006, undefined],
  ])(
    'turns a %i refusal (%o) into the close code a WebSocket would have had',
    async (status, error, headers, code, retryAfterMs) => {
      const fake = await fakeSse();
      fake.refuse = {
        status,
        body: error ? JSON.stringify({ error }) : '<html>Bad gateway</html>',
        headers,
      };
      const { handlers, seen } = record();
      new SseLink({ base: fake.base, token: () => 't', client: 'c' }, handlers);
      await eventually(() => seen.closes.length === 1, 'the close');
      expect(seen.closes[0]?.code).toBe(code);
      expect(seen.closes[0]?.retryAfterMs).toBe(retryAfterMs);
      expect(seen.closes[0]?.reason).toContain(`HTTP ${status}`);
      expect(seen.opened).toBe(0);
    },
  );

  it('takes a 200 that is not an event stream (a proxy page) for an unavailable endpoint: 1006', async () => {
    const fake = await fakeSse();
    fake.refuse = { status: 200, body: '<html></html>', headers: { 'content-type': 'text/html' } };
    const { handlers, seen } = record();
    new SseLink({ base: fake.base, token: () => 't', client: 'c' }, handlers);
    await eventually(() => seen.closes.length === 1, 'the close');
    expect(seen.closes[0]).toMatchObject({
      code: 1006,
      reason: expect.stringMatching(/not an event stream/) as unknown,
    });
  });

  it('holds ops until the welcome names the session, then POSTs them there', async () => {
    const { fake, link, stream, seen } = await connect({ token: () => 'tok-9' });
    await eventually(() => seen.opened === 1, 'the stream');
    expect(link.send({ op: 'subscribe', id: 1, channel: 'signals' })).toBe(true);
    expect(fake.posts).toEqual([]);
    await stream().send(WELCOME);
    await eventually(() => fake.posts.length === 1, 'the POST');
    const post = fake.posts[0];
    expect(post?.url).toBe('/api/v1/sse/c_0123456789abcdef');
    expect(post?.headers.authorization).toBe('Bearer tok-9');
    expect(post?.headers['content-type']).toBe('application/json');
    expect(post?.body).toEqual([{ op: 'subscribe', id: 1, channel: 'signals' }]);
  });

  it('POSTs in order, one request at a time, batching what queued meanwhile by 32 at most', async () => {
    const { fake, link } = await welcomed();
    fake.holdPosts = true;
    const ops: ClientOp[] = [
      { op: 'subscribe', id: 1, channel: 'signals' },
      ...Array.from({ length: 39 }, (_, i) => unsub(`u${i}`)),
      { op: 'unsubscribe', id: 2, channel: 'signals' },
    ];
    link.send(ops[0] as ClientOp);
    await eventually(() => fake.posts.length === 1, 'the first POST');
    for (const op of ops.slice(1)) link.send(op);
    // The first is still unanswered: nothing else may leave.
    await fake.streams[0]?.write(':\n\n'); // a round trip through the same server
    expect(fake.posts).toHaveLength(1);
    fake.posts[0]?.answer();
    await eventually(() => fake.posts.length === 2, 'the second POST');
    fake.posts[1]?.answer();
    await eventually(() => fake.posts.length === 3, 'the third POST');
    fake.posts[2]?.answer();
    expect(fake.posts.map((p) => (p.body as unknown[]).length)).toEqual([1, 32, 8]);
    expect(fake.posts.flatMap((p) => p.body as ClientOp[])).toEqual(ops);
  });

  it('never POSTs hello or pong: the stream signs in and is never pinged', async () => {
    const { fake, link } = await welcomed();
    expect(link.send({ op: 'pong' })).toBe(false);
    expect(link.send({ op: 'hello', token: 't' })).toBe(false);
    link.send({ op: 'ping' });
    await eventually(() => fake.posts.length === 1, 'the POST');
    expect(fake.posts[0]?.body).toEqual([{ op: 'ping' }]);
  });

  it('sends the token it is given at the time of each POST (one renewed in place)', async () => {
    let token = 'old';
    const { fake, link } = await welcomed({ token: () => token });
    token = 'renewed';
    link.send(unsub(1));
    await eventually(() => fake.posts.length === 1, 'the POST');
    expect(fake.streams[0]?.request.headers.authorization).toBe('Bearer old');
    expect(fake.posts[0]?.headers.authorization).toBe('Bearer renewed');
  });

  it('takes a 404 to a POST (sse_session_unknown) for a closed stream: 1006', async () => {
    const { fake, link, seen, stream } = await welcomed();
    fake.postAnswer = {
      status: 404,
      body: {
        error: { code: 'sse_session_unknown', message: 'no open stream has this client_id' },
      },
    };
    link.send(unsub(1));
    link.send(unsub(2));
    await eventually(() => seen.closes.length === 1, 'the close');
    expect(seen.closes[0]).toMatchObject({
      code: 1006,
      reason: expect.stringMatching(/sse_session_unknown/) as unknown,
    });
    await eventually(() => stream().gone, 'the stream aborted');
    expect(link.send(unsub(3))).toBe(false);
  });

  it('takes a 401 to a POST for a refused token: 4001', async () => {
    const { fake, link, seen } = await welcomed();
    fake.postAnswer = {
      status: 401,
      body: { error: { code: 'token_expired', message: 'expired' } },
    };
    link.send(unsub(1));
    await eventually(() => seen.closes.length === 1, 'the close');
    expect(seen.closes[0]?.code).toBe(4001);
  });

  it('reports a 400 to a POST as a failure and keeps the link and the order', async () => {
    const { fake, link, seen } = await welcomed();
    fake.holdPosts = true;
    link.send(unsub(1));
    await eventually(() => fake.posts.length === 1, 'the first POST');
    link.send(unsub(2));
    fake.posts[0]?.answer(400, { error: { code: 'bad_request', message: 'op 1: bad' } });
    await eventually(() => seen.failures.length === 1, 'the failure');
    expect(seen.failures[0]).toEqual({
      code: 'bad_request',
      message: expect.stringMatching(/refused unsubscribe: op 1: bad/) as unknown,
    });
    await eventually(() => fake.posts.length === 2, 'the next POST');
    expect(fake.posts[1]?.body).toEqual([unsub(2)]);
    expect(seen.closes).toEqual([]);
  });

  it('gives the link up when a POST gets no answer in time: 1006', async () => {
    const { fake, link, seen } = await welcomed({ postTimeoutMs: 200 });
    fake.holdPosts = true;
    link.send(unsub(1));
    await eventually(() => seen.closes.length === 1, 'the close');
    expect(seen.closes[0]).toMatchObject({
      code: 1006,
      reason: expect.stringMatching(/no answer within 200 ms/) as unknown,
    });
  });

  it('calls nothing back after close() from our side, and aborts the stream and the POST in flight', async () => {
    const { fake, link, seen, stream } = await welcomed();
    fake.holdPosts = true;
    link.send(unsub(1));
    await eventually(() => fake.posts.length === 1, 'the POST');
    link.close();
    expect(link.open).toBe(false);
    await eventually(() => stream().gone, 'the stream aborted');
    await stream().send({ type: 'system', message: 'late', ts: 1 });
    fake.posts[0]?.answer(404);
    expect(link.send(unsub(2))).toBe(false);
    expect(fake.posts).toHaveLength(1);
    expect(seen.messages).toHaveLength(1);
    expect(seen.closes).toEqual([]);
  });
});
