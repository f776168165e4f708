/**
 * POST /api/v1/publish (the trading engine's way in) and GET /api/v1/history (a client's way
 * back to missed events), over real HTTP against a real gateway
 * (docs/http-api.md#post-apiv1publish, docs/http-api.md#get-apiv1history).
 */
import { describe, expect, it } from 'vitest';
import type { HistoryAnswer } from '../../src/protocol/index.js';
import type { PublishResult } from '../../src/server/backplane/backplane.js';
import type { TestClient } from '../support/client.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import {
  PUBLISH_TOKEN,
  publish,
  signToken,
  type ErrorBody,
  type PublishAnswer,
  type TestGateway,
} from '../support/gateway.js';

/** POSTs a raw body to /api/v1/publish: for requests the JSON helper cannot make. */
async function postRaw(
  tg: TestGateway,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${tg.http}/api/v1/publish`, { method: 'POST', headers, body });
  return { status: res.status, body: await res.json() };
}

async function history(
  tg: TestGateway,
  query: string,
  token?: string,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${tg.http}/api/v1/history?${query}`, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
  return { status: res.status, body: await res.json() };
}

/** The gateway still accepts and stores a publish after whatever came before. */
async function expectStillPublishing(tg: TestGateway): Promise<void> {
  const res = await publish(tg, { channel: 'signals:health', data: { ok: true } });
  expect(res.status).toBe(200);
  expect((res.body as PublishAnswer).results).toHaveLength(1);
}

describe('POST /api/v1/publish', () => {
  const gw = useGateway();

  async function subscriber(channel: string): Promise<TestClient> {
    const c = await gw.authed();
    expect(await c.subscribe(channel)).toMatchObject({ type: 'subscribed', channel });
    return c;
  }

  describe('authentication', () => {
    it('answers 401 unauthorized without a token', async () => {
      const tg = await gw.start();
      const res = await postRaw(tg, JSON.stringify({ channel: 'signals', data: {} }), {
        'content-type': 'application/json',
      });
      expect(res.status).toBe(401);
      expect((res.body as ErrorBody).error.code).toBe('unauthorized');
      await expectStillPublishing(tg);
    });

    it('answers a text/plain body with 400 bad_request naming the Content-Type', async () => {
      const tg = await gw.start();
      const res = await postRaw(tg, JSON.stringify({ channel: 'signals', data: {} }), {
        'content-type': 'text/plain',
        authorization: `Bearer ${PUBLISH_TOKEN}`,
      });
      expect(res.status).toBe(400);
      expect((res.body as ErrorBody).error).toEqual({
        code: 'bad_request',
        message: 'Content-Type must be application/json',
      });
      await expectStillPublishing(tg);
    });

    it('answers 401 unauthorized with a wrong token', async () => {
      const tg = await gw.start();
      const res = await publish(tg, { channel: 'signals', data: {} }, 'pub_wrong_token');
      expect(res.status).toBe(401);
      expect((res.body as ErrorBody).error.code).toBe('unauthorized');
      await expectStillPublishing(tg);
    });

    it('answers 404 when no publish token is configured, whatever token is sent', async () => {
      const tg = await gw.start({ ARCHON_PUBLISH_TOKENS: '' });
      const res = await publish(tg, { channel: 'signals', data: {} });
      expect(res.status).toBe(404);
      expect((res.body as ErrorBody).error.code).toBe('not_found');
      const anonymous = await postRaw(tg, JSON.stringify({ channel: 'signals', data: {} }), {
        'content-type': 'application/json',
      });
      expect(anonymous.status).toBe(404);
    });

    it('accepts every token of a comma-separated list, for rotation', async () => {
      const tg = await gw.start({ ARCHON_PUBLISH_TOKENS: 'pub_old_token, pub_new_token' });
      const old = await publish(tg, { channel: 'signals', data: { n: 1 } }, 'pub_old_token');
      const fresh = await publish(tg, { channel: 'signals', data: { n: 2 } }, 'pub_new_token');
      expect(old.status).toBe(200);
      expect(fresh.status).toBe(200);
      expect((old.body as PublishAnswer).results[0]?.seq).toBe(1);
      expect((fresh.body as PublishAnswer).results[0]?.seq).toBe(2);
      const other = await publish(tg, { channel: 'signals', data: { n: 3 } }, PUBLISH_TOKEN);
      expect(other.status).toBe(401);
    });
  });

  describe('accepted events', () => {
    it('answers a single event with its channel, seq and epoch', async () => {
      const tg = await gw.start();
      const c = await subscriber('signals');
      const res = await publish(tg, { channel: 'signals', data: { symbol: 'EURUSD' } });
      expect(res.status).toBe(200);
      const results = (res.body as PublishAnswer).results;
      expect(results).toHaveLength(1);
      expect(results[0]).toMatchObject({ channel: 'signals', seq: 1 });
      expect(results[0]?.epoch).toEqual(expect.any(String));
      expect(results[0]?.epoch.length).toBeGreaterThan(0);
      expect(await c.type('event')).toMatchObject({
        channel: 'signals',
        seq: 1,
        data: { symbol: 'EURUSD' },
      });
    });

    it('answers a batch with one result per event, in order, with consecutive seqs', async () => {
      const tg = await gw.start();
      const events = [
        { channel: 'signals', data: { n: 0 } },
        { channel: 'positions:ACC1', key: 'EURUSD', data: { qty: 1 } },
        { channel: 'signals', data: { n: 1 } },
        { channel: 'signals', data: { n: 2 } },
        { channel: 'risk:ACC1', data: { level: 'high' } },
      ];
      const res = await publish(tg, { events });
      expect(res.status).toBe(200);
      const results = (res.body as PublishAnswer).results;
      expect(results.map((r) => r.channel)).toEqual(events.map((e) => e.channel));
      expect(results.filter((r) => r.channel === 'signals').map((r) => r.seq)).toEqual([1, 2, 3]);
      expect(results[1]?.seq).toBe(1);
      expect(results[4]?.seq).toBe(1);
      const next = await publish(tg, {
        events: [
          { channel: 'signals', data: { n: 3 } },
          { channel: 'signals', data: { n: 4 } },
        ],
      });
      expect((next.body as PublishAnswer).results.map((r) => r.seq)).toEqual([4, 5]);
    });

    it('stores an event published twice with the same id once and answers the retry as a duplicate', async () => {
      const tg = await gw.start();
      const c = await subscriber('signals');
      const event = { channel: 'signals', id: 'order-42-filled', data: { order: 42 } };
      const first = await publish(tg, event);
      const retry = await publish(tg, event);
      expect(first.status).toBe(200);
      expect(retry.status).toBe(200);
      const a = (first.body as PublishAnswer).results[0];
      const b = (retry.body as PublishAnswer).results[0];
      expect(a?.duplicate).toBeUndefined();
      expect(b).toMatchObject({
        channel: 'signals',
        seq: a?.seq,
        epoch: a?.epoch,
        duplicate: true,
      });

      const marker = await publish(tg, { channel: 'signals', data: { marker: true } });
      expect((marker.body as PublishAnswer).results[0]?.seq).toBe(2);
      await c.next((m) => m.type === 'event' && m.seq === 2);
      expect(c.events('signals').map((e) => e.seq)).toEqual([1, 2]);

      const stored = await history(tg, 'channel=signals&since_seq=0', await signToken());
      expect((stored.body as HistoryAnswer).events.map((e) => e.data)).toEqual([
        { order: 42 },
        { marker: true },
      ]);
    });
  });

  describe('validation', () => {
    const cases: { what: string; body: unknown; code: string; message: RegExp }[] = [
      {
        what: 'an unknown channel',
        body: { channel: 'orders:ACC1', data: {} },
        code: 'unknown_channel',
        message: /unknown channel "orders:ACC1"/,
      },
      {
        what: 'a state channel event without a key',
        body: { channel: 'positions:ACC1', data: { qty: 1 } },
        code: 'invalid_event',
        message: /positions:ACC1 is a state channel: key is required/,
      },
      {
        what: 'an event without data',
        body: { channel: 'signals' },
        code: 'invalid_event',
        // Must name the missing field, not only repeat the expected shape.
        message: /data is required|at data:/,
      },
      {
        what: 'data: null on a stream channel',
        body: { channel: 'signals', data: null },
        code: 'invalid_event',
        message: /data: null .*only for state channels/,
      },
      {
        what: 'a system event without data.message',
        body: { channel: 'system', data: { text: 'hi' } },
        code: 'invalid_event',
        message: /data\.message/,
      },
      {
        what: 'more than 1000 events',
        body: {
          events: Array.from({ length: 1001 }, (_, i) => ({ channel: 'signals', data: i })),
        },
        code: 'invalid_event',
        message: /at most 1000 events/,
      },
      {
        what: 'a batch event without data',
        body: { events: [{ channel: 'signals', data: 1 }, { channel: 'signals' }] },
        code: 'invalid_event',
        message: /data is required \(events\.1\)|at events\.1\.data:/,
      },
      {
        what: 'a bad event inside a batch',
        body: {
          events: [
            { channel: 'signals', data: 1 },
            { channel: 'positions:ACC1', data: 2 },
          ],
        },
        code: 'invalid_event',
        message: /key is required \(events\.1\)/,
      },
    ];

    for (const { what, body, code, message } of cases) {
      it(`rejects ${what} with 400 ${code}, stores nothing and keeps working`, async () => {
        const tg = await gw.start();
        const res = await publish(tg, body);
        expect(res.status).toBe(400);
        const error = (res.body as ErrorBody).error;
        expect(error.code).toBe(code);
        expect(error.message).toMatch(message);
        const after = await publish(tg, { channel: 'signals', data: { after: true } });
        expect(after.status).toBe(200);
        // Nothing of the rejected request was stored: the next signal is the first.
        expect((after.body as PublishAnswer).results[0]?.seq).toBe(1);
      });
    }

    it('rejects a body that is not JSON with 400 and keeps working', async () => {
      const tg = await gw.start();
      const res = await postRaw(tg, '{"channel": "signals", data', {
        'content-type': 'application/json',
        authorization: `Bearer ${PUBLISH_TOKEN}`,
      });
      expect(res.status).toBe(400);
      const error = (res.body as ErrorBody).error;
      expect(error.code).toBe('bad_request');
      expect(error.message).toMatch(/JSON/);
      await expectStillPublishing(tg);
    });

    it('rejects a body over 1 MiB with 413 payload_too_large and keeps working', async () => {
      const tg = await gw.start();
      const res = await publish(tg, { channel: 'signals', data: 'x'.repeat(1100 * 1024) });
      expect(res.status).toBe(413);
      expect((res.body as ErrorBody).error.code).toBe('payload_too_large');
      await expectStillPublishing(tg);
    });
  });
});

describe('GET /api/v1/history', () => {
  const gw = useGateway();

  async function publishSignals(n: number): Promise<PublishResult[]> {
    const res = await publish(gw.tg, {
      events: Array.from({ length: n }, (_, i) => ({ channel: 'signals', data: { n: i + 1 } })),
    });
    expect(res.status).toBe(200);
    return (res.body as PublishAnswer).results;
  }

  it('returns the events after since_seq with the epoch, seq, first_seq and complete:true', async () => {
    const tg = await gw.start();
    const results = await publishSignals(5);
    const res = await history(tg, 'channel=signals&since_seq=2', await signToken());
    expect(res.status).toBe(200);
    const body = res.body as HistoryAnswer;
    expect(body).toMatchObject({
      channel: 'signals',
      epoch: results[0]?.epoch,
      seq: 5,
      first_seq: 1,
      complete: true,
      epoch_changed: false,
    });
    expect(body.events.map((e) => e.seq)).toEqual([3, 4, 5]);
    expect(body.events.map((e) => e.data)).toEqual([{ n: 3 }, { n: 4 }, { n: 5 }]);
  });

  it('returns every event of an account the token covers with the right epoch', async () => {
    const tg = await gw.start();
    const res = await publish(tg, { channel: 'risk:ACC1', data: { level: 'margin-call' } });
    const epoch = (res.body as PublishAnswer).results[0]?.epoch ?? '';
    const answer = await history(
      tg,
      `channel=risk:ACC1&since_seq=0&epoch=${epoch}`,
      await signToken({ accounts: ['ACC1'] }),
    );
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ epoch, seq: 1, complete: true, epoch_changed: false });
    expect((answer.body as HistoryAnswer).events.map((e) => e.data)).toEqual([
      { level: 'margin-call' },
    ]);
  });

  it('says epoch_changed:true and returns the whole epoch when the client knows another epoch', async () => {
    const tg = await gw.start();
    await publishSignals(3);
    const res = await history(
      tg,
      'channel=signals&since_seq=2&epoch=some-older-epoch',
      await signToken(),
    );
    expect(res.status).toBe(200);
    const body = res.body as HistoryAnswer;
    expect(body.epoch_changed).toBe(true);
    expect(body.complete).toBe(false);
    expect(body.events.map((e) => e.seq)).toEqual([1, 2, 3]);
  });

  it('answers 401 without a token', async () => {
    const tg = await gw.start();
    const res = await history(tg, 'channel=signals&since_seq=0');
    expect(res.status).toBe(401);
    expect((res.body as ErrorBody).error.code).toBe('unauthorized');
  });

  it('answers 401 with a token signed by another key', async () => {
    const tg = await gw.start();
    const forged = await signToken({}, 'another-secret-0123456789abcdef0123456789');
    const res = await history(tg, 'channel=signals&since_seq=0', forged);
    expect(res.status).toBe(401);
    expect((res.body as ErrorBody).error.code).toBe('unauthorized');
  });

  it('answers 403 for an account the token does not cover', async () => {
    const tg = await gw.start();
    await publish(tg, { channel: 'risk:ACC9', data: { level: 'high' } });
    const res = await history(tg, 'channel=risk:ACC9&since_seq=0', await signToken());
    expect(res.status).toBe(403);
    const error = (res.body as ErrorBody).error;
    expect(error.code).toBe('forbidden');
    expect(error.message).toContain('ACC9');
  });

  it('answers 400 for a state channel, which has no history', async () => {
    const tg = await gw.start();
    const res = await history(tg, 'channel=positions:ACC1&since_seq=0', await signToken());
    expect(res.status).toBe(400);
    const error = (res.body as ErrorBody).error;
    expect(error.code).toBe('bad_request');
    expect(error.message).toMatch(/state channel/);
  });

  it('answers 400 for an unknown channel', async () => {
    const tg = await gw.start();
    const res = await history(tg, 'channel=orders&since_seq=0', await signToken());
    expect(res.status).toBe(400);
    expect((res.body as ErrorBody).error.code).toBe('unknown_channel');
  });

  it('delivers to a live subscriber what history later returns, seq for seq', async () => {
    const tg = await gw.start();
    const c = await gw.authed();
    await c.subscribe('signals');
    await publishSignals(4);
    await eventually(() => c.events('signals').length === 4, 'four live events');
    const res = await history(tg, 'channel=signals&since_seq=0', await signToken());
    const stored = (res.body as HistoryAnswer).events;
    expect(stored.map((e) => [e.seq, e.data])).toEqual(
      c.events('signals').map((e) => [e.seq, e.data]),
    );
  });
});
