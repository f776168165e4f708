import { describe, expect, it } from 'vitest';
import {
  BUDGET,
  MEASURED,
  MILLION,
  fleet,
  frameBytes,
  gatewayCores,
  network,
  rates,
  redisCallsPerEvent,
  redisCommands,
  respBytes,
  shards,
  type Costs,
  type Mix,
} from '../../bench/capacity-model.ts';

const unit: Costs = {
  usPerDelivery: 10,
  usPerEvent: 100,
  usPerConnectionSecond: 0,
  baseRssMb: 100,
  kbPerConnection: 8,
  redisUsPerEvent: 20,
  redisUsPerPubsubCopy: 0,
};
const mix: Mix = { ...MILLION, traders: 1000, alertsPerAccountPerHour: 0 };

describe('capacity model', () => {
  it('counts one delivery per position event and one per trader per signal', () => {
    const r = rates(mix);
    expect(r.positionDeliveries).toBe(2000);
    expect(r.signalDeliveries).toBe(1000);
    expect(r.scripts).toBe(1001);
  });

  it('gives the gateway CPU of known inputs', () => {
    // 3,000 deliveries × 10 µs + 2,000 position events × 100 µs + 1 signal × 2 workers × 100 µs
    expect(gatewayCores(mix, unit, 2)).toBeCloseTo(0.2302, 6);
  });

  it('scales gateway CPU, Redis commands and network linearly with the traders', () => {
    const double = { ...mix, traders: 2 * mix.traders };
    const noSignals = { ...mix, signalRate: 0 };
    expect(gatewayCores({ ...noSignals, traders: 2000 }, unit, 1)).toBeCloseTo(
      2 * gatewayCores(noSignals, unit, 1),
      9,
    );
    const o = { withId: true, cluster: true };
    expect(redisCommands({ ...noSignals, traders: 2000 }, o)).toBe(2 * redisCommands(noSignals, o));
    expect(network(double, 1).egress).toBeCloseTo(2 * network(mix, 1).egress, 3);
  });

  it('counts the publish script calls of redis-scripts.ts per event', () => {
    expect(redisCallsPerEvent({ withId: true, cluster: true })).toBe(8);
    expect(redisCallsPerEvent({ withId: false, cluster: true })).toBe(6);
    expect(redisCallsPerEvent({ withId: false, cluster: false })).toBe(5);
  });

  it('sizes RESP and WebSocket frames as the wire carries them', () => {
    expect(respBytes(['GET', 'k'])).toBe('*2\r\n$3\r\nGET\r\n$1\r\nk\r\n'.length);
    // 2-byte header under 126 bytes of payload, 4 above
    const small = frameBytes({ channel: 's', key: null, dataBytes: 2, seqDigits: 1 });
    expect(small).toBe(
      '{"type":"event","channel":"s","seq":9,"key":null,"ts":1111111111111,"data":""}'.length + 2,
    );
    const large = frameBytes({ channel: 's', key: null, dataBytes: 200, seqDigits: 1 });
    expect(large).toBe(small + 198 + 2);
  });

  it('takes the more workers of its CPU and connection bounds', () => {
    const f = fleet(mix, unit, BUDGET);
    // (3,000 × 10 + 2,000 × 100) µs/s / (0.6 × 1e6 − 1 × 100) → 1 worker; connections → 1
    expect(f.workers).toBe(1);
    const crowded = fleet(
      { ...mix, traders: 50_000, signalRate: 0, positionEventsPerAccount: 0 },
      unit,
      BUDGET,
    );
    expect(crowded.boundBy).toBe('connections');
    expect(crowded.workers).toBe(Math.ceil(50_000 / BUDGET.maxConnectionsPerWorker));
  });

  it('keeps each Redis primary under its CPU share', () => {
    const s = shards(MILLION, MEASURED, BUDGET, 100);
    expect(s.cpuPerShard).toBeLessThanOrEqual(BUDGET.redisCpuShare);
    expect(
      shards(MILLION, { ...MEASURED, redisUsPerEvent: 2 * MEASURED.redisUsPerEvent }, BUDGET, 100)
        .shards,
    ).toBeGreaterThanOrEqual(2 * s.shards - 1);
  });
});
