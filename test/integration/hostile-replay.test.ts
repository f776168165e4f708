/**
 * Replay amplification (docs/security.md, Replay budget): a few bytes of `subscribe` with
 * `since` make the server send the whole history again. Each user has
 * WEBSOCKET_REPLAY_BYTES_PER_MINUTE of replay over all their connections; beyond it a
 * subscribe is answered `replay_limited`, the connection stays open, and everyone else is
 * served as before.
 */
import { describe, expect, it } from 'vitest';
import type { Message } from '../support/client.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import { publish, type PublishAnswer } from '../support/gateway.js';
import { bystander, expectEverySignal, serveBystander } from '../support/hostile.js';
import { metricValue } from '../support/metrics.js';

/** About 2.5 replays of the history below. */
const BUDGET = 600_000;
/** Signals in history when the attack starts; the legitimate client's 40 come on top. */
const HISTORY = 1000;

describe('replay amplification', () => {
  const gw = useGateway({
    WEBSOCKET_SHUTDOWN_TIMEOUT: '2',
    WEBSOCKET_REPLAY_BYTES_PER_MINUTE: String(BUDGET),
    // Room for every event: a since seq 0 stays recoverable for the whole test.
    WEBSOCKET_HISTORY_SIZE: '2000',
  });

  it('answers replay_limited to a client re-subscribing with since seq 0 over its budget, keeps it connected, and keeps serving a legitimate client', async () => {
    const tg = await gw.start();
    const legit = await bystander(gw, 'legit');
    // 1,000 signals of about 200 bytes each fill the history.
    const res = await publish(tg, {
      events: Array.from({ length: HISTORY }, (_, i) => ({
        channel: 'signals',
        data: { n: i + 1, pad: 'x'.repeat(150) },
      })),
    });
    expect(res.status).toBe(200);
    const epoch = (res.body as PublishAnswer).results[0]?.epoch ?? '';
    await eventually(() => legit.events('signals').length === HISTORY, 'the live events', {
      timeoutMs: 10_000,
    });

    const attacker = await gw.authed({ sub: 'attacker' });
    const answers: Message[] = [];
    const attack = async () => {
      for (let id = 1; id <= 20; id++) {
        const answer = await attacker.subscribe('signals', { epoch, seq: 0 }, id);
        answers.push(answer);
        if (answer.type === 'error') return;
      }
    };
    await Promise.all([attack(), serveBystander(tg, legit, 40, HISTORY)]);

    const replays = answers.filter((a) => a.type === 'subscribed');
    const refusal = answers.at(-1);
    expect(refusal).toMatchObject({ type: 'error', id: answers.length, code: 'replay_limited' });
    expect(replays.length).toBeGreaterThanOrEqual(1);
    for (const r of replays) {
      expect(r).toMatchObject({ recovered: true });
      expect(r.replayed).toBeGreaterThanOrEqual(HISTORY);
    }
    // What the budget let through: whole replays of the 1,000 events, no more than it holds
    // (with room for what refills while the test runs).
    const replayBytes = legit
      .events('signals')
      .slice(0, HISTORY)
      .reduce((n, e) => n + Buffer.byteLength(JSON.stringify(e)), 0);
    expect(replays.length).toBeLessThanOrEqual(Math.floor((BUDGET * 1.5) / replayBytes));

    // The attacker keeps its connection (the SDK retries later).
    attacker.send({ op: 'ping' });
    await attacker.type('pong');
    expect(attacker.ws.readyState).toBe(attacker.ws.OPEN);

    await expectEverySignal(legit, HISTORY + 40);
    expect(await metricValue(tg, 'archon_websocket_errors_total', { type: 'replay_limited' })).toBe(
      1,
    );

    // The budget is the user's: a new connection of the attacker brings no fresh budget…
    const again = await gw.authed({ sub: 'attacker' });
    expect(await again.subscribe('signals', { epoch, seq: 0 }, 1)).toMatchObject({
      type: 'error',
      id: 1,
      code: 'replay_limited',
    });
    // …while another user still recovers the whole history.
    const resuming = await gw.authed({ sub: 'resuming' });
    expect(await resuming.subscribe('signals', { epoch, seq: 0 })).toMatchObject({
      type: 'subscribed',
      recovered: true,
      replayed: HISTORY + 40,
    });
  });
});
