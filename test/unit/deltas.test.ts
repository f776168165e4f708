/**
 * What a connection that gets deltas remembers of the state values it wrote
 * (src/server/deltas.ts), driven with real frames as the hub builds them.
 */
import { describe, expect, it } from 'vitest';
import { ConnectionDeltas } from '../../src/server/deltas.js';
import { Frame, type StateChange } from '../../src/server/frame.js';

const POSITIONS = 'positions:ACC1';

/** The update of `key` to seq `seq`, with a delta on the value of `baseSeq` when given. */
function update(key: string, seq: number, baseSeq?: number, channel = POSITIONS): Frame {
  const full = { type: 'event', channel, seq, key, ts: 0, data: { price: seq, pad: 'x' } };
  const delta =
    baseSeq === undefined
      ? null
      : {
          baseSeq,
          frame: new Frame(Buffer.from(JSON.stringify({ ...full, base_seq: baseSeq })), {
            cls: 'state',
            channel,
          }),
        };
  return stateFrame(full, channel, key, { kind: 'value', seq, delta });
}

function remove(key: string, seq: number): Frame {
  const full = { type: 'event', channel: POSITIONS, seq, key, ts: 0, data: null };
  return stateFrame(full, POSITIONS, key, { kind: 'drop' });
}

function stateFrame(message: object, channel: string, key: string, change: StateChange): Frame {
  return new Frame(Buffer.from(JSON.stringify(message)), {
    cls: 'state',
    channel,
    conflateKey: `${channel}\u0000${key}`,
    stateChange: change,
  });
}

const snapshot = (channel = POSITIONS) =>
  Frame.of({ type: 'snapshot', channel, epoch: 'e', seq: 9, entries: [] }, 'state');

/** What the client was sent for each frame: 'delta' or 'full'. */
function written(deltas: ConnectionDeltas, frames: Frame[]): string[] {
  return frames.map((f) => (deltas.pick(f, false) === f ? 'full' : 'delta'));
}

describe('ConnectionDeltas', () => {
  it('writes a delta only when its base is the value it last wrote of the key', () => {
    const deltas = new ConnectionDeltas();
    expect(
      written(deltas, [update('EURUSD', 1), update('EURUSD', 2, 1), update('EURUSD', 3, 2)]),
    ).toEqual(['full', 'delta', 'delta']);
  });

  it('writes in full an update whose base was conflated away before it was written', () => {
    const deltas = new ConnectionDeltas();
    // Seq 2 waited in the queue and was replaced by seq 3, whose base is 2.
    expect(written(deltas, [update('EURUSD', 1), update('EURUSD', 3, 2)])).toEqual([
      'full',
      'full',
    ]);
    expect(written(deltas, [update('EURUSD', 4, 3)])).toEqual(['delta']);
  });

  it('writes the first update of a key in full, whatever base its delta names', () => {
    expect(written(new ConnectionDeltas(), [update('EURUSD', 5, 4)])).toEqual(['full']);
  });

  it('keeps each key and each channel apart', () => {
    const deltas = new ConnectionDeltas();
    expect(
      written(deltas, [
        update('EURUSD', 1),
        update('GBPUSD', 2),
        update('EURUSD', 3, 1),
        update('GBPUSD', 4, 1),
        update('EURUSD', 5, 3, 'positions:ACC2'),
      ]),
    ).toEqual(['full', 'full', 'delta', 'full', 'full']);
  });

  it('forgets a key on its delete and on an expired stand-in, so its next value goes in full', () => {
    const deltas = new ConnectionDeltas();
    written(deltas, [update('EURUSD', 1), update('GBPUSD', 2)]);
    expect(written(deltas, [remove('EURUSD', 3)])).toEqual(['full']);
    expect(deltas.size).toBe(1);
    const expiring = update('GBPUSD', 4, 2);
    expect(deltas.pick(expiring, true)).toBe(expiring.expiredFrame());
    expect(deltas.size).toBe(0);
    expect(written(deltas, [update('GBPUSD', 5, 2)])).toEqual(['full']);
  });

  it('forgets a channel on its snapshot and on forgetChannel, not the other channels', () => {
    const deltas = new ConnectionDeltas();
    written(deltas, [update('EURUSD', 1), update('EURUSD', 2, 1, 'positions:ACC2')]);
    const snap = snapshot();
    expect(deltas.pick(snap, false)).toBe(snap);
    expect(
      written(deltas, [update('EURUSD', 3, 1), update('EURUSD', 4, 2, 'positions:ACC2')]),
    ).toEqual(['full', 'delta']);
    deltas.forgetChannel('positions:ACC2');
    expect(written(deltas, [update('EURUSD', 5, 4, 'positions:ACC2')])).toEqual(['full']);
  });

  it('passes every other frame through, and an expired one as its stand-in', () => {
    const deltas = new ConnectionDeltas();
    const reply = Frame.of({ type: 'pong' });
    expect(deltas.pick(reply, false)).toBe(reply);
    const signal = new Frame(Buffer.from('{"type":"event"}'), {
      cls: 'stream',
      channel: 'signals',
      expiresAt: 1,
      seq: 7,
    });
    expect(deltas.pick(signal, true)).toBe(signal.expiredFrame());
    expect(deltas.size).toBe(0);
  });
});
