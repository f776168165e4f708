/** Readings of the per-minute series: a fall of connections, and the onset of a fault. */
import {
  BASELINE_SHARE,
  ERRORS_ALERT_PER_MINUTE,
  MAX_ERRORS_PER_MINUTE,
  type StatsAnswer,
} from '../../protocol/index.js';

export interface Onset {
  kind: 'none' | 'sudden' | 'gradual';
  /** The first abnormal minute (ISO), when there is one. */
  minute: string | null;
  description: string;
}

/** A minute as the evidence lines say it: "10:42Z". */
export const minuteLabel = (iso: string) =>
  iso.replace(/:00(\.000)?Z$/, 'Z').replace(/^\d{4}-\d\d-\d\dT/, '');

/** A fall of connections in the per-minute series: the first minute under BASELINE_SHARE of
 * the highest count before it (at least 5). */
export interface ConnectionDrop {
  /** Index of the first minute under the high, and of the high. */
  i: number;
  high_i: number;
  high: number;
  low: number;
  /** The minute before the fall. */
  prev: number;
  sudden: boolean;
}

export function connectionDrop(series: StatsAnswer['series']): ConnectionDrop | null {
  let peak = 0;
  let peakAt = -1;
  for (let i = 0; i < series.length; i++) {
    const m = series[i];
    if (!m) continue;
    if (peak >= 5 && m.connections < BASELINE_SHARE * peak) {
      const prev = series[i - 1]?.connections ?? peak;
      return {
        i,
        high_i: peakAt,
        high: peak,
        low: m.connections,
        prev,
        sudden: prev - m.connections >= (1 - BASELINE_SHARE) * peak,
      };
    }
    if (m.connections > peak) {
      peak = m.connections;
      peakAt = i;
    }
  }
  return null;
}

/** Reads the per-minute series: when it started, and whether suddenly or gradually. Pure. */
export function findOnset(stats: StatsAnswer): Onset {
  const s = stats.series;
  type Hit = { i: number; kind: 'sudden' | 'gradual'; text: string };
  const hits: Hit[] = [];

  // Errors: the first minute at the alert rate.
  const e = s.findIndex((m) => m.errors >= ERRORS_ALERT_PER_MINUTE);
  if (e !== -1) {
    const before = e > 0 ? (s[e - 1]?.errors ?? 0) : 0;
    const at = s[e];
    if (at) {
      let from = e;
      while (from > 0 && (s[from - 1]?.errors ?? 0) >= MAX_ERRORS_PER_MINUTE) from--;
      hits.push(
        before < ERRORS_ALERT_PER_MINUTE / 2
          ? {
              i: e,
              kind: 'sudden',
              text: `errors jumped from ${before} to ${at.errors}/min at ${minuteLabel(at.minute)}`,
            }
          : {
              i: from,
              kind: 'gradual',
              text: `errors rose over ${e - from + 1} min, from ${s[from]?.errors ?? 0}/min at ${minuteLabel(s[from]?.minute ?? '')} to ${at.errors}/min at ${minuteLabel(at.minute)}`,
            },
      );
    }
  }

  // Connections: the first minute under 80 % of the highest count before it.
  const drop = connectionDrop(s);
  if (drop) {
    const m = s[drop.i];
    if (m)
      hits.push(
        drop.sudden
          ? {
              i: drop.i,
              kind: 'sudden',
              text: `connections fell from ${drop.prev} to ${m.connections} within a minute at ${minuteLabel(m.minute)}`,
            }
          : {
              i: drop.high_i + 1,
              kind: 'gradual',
              text: `connections declined over ${drop.i - drop.high_i} min, from ${drop.high} at ${minuteLabel(s[drop.high_i]?.minute ?? '')} to ${m.connections} at ${minuteLabel(m.minute)}`,
            },
      );
  }

  // Messages: delivery stopping while it used to flow (the current minute is still partial).
  let flow = 0;
  for (let i = 0; i < s.length - 1; i++) {
    const m = s[i];
    if (!m) continue;
    if (flow >= 10 && m.messages < 0.2 * flow) {
      const prev = s[i - 1]?.messages ?? flow;
      hits.push({
        i,
        kind: prev >= 0.5 * flow ? 'sudden' : 'gradual',
        text: `messages fell from ${prev}/min to ${m.messages}/min at ${minuteLabel(m.minute)}`,
      });
      break;
    }
    flow = Math.max(flow, m.messages);
  }

  hits.sort((a, b) => a.i - b.i);
  const first = hits[0];
  if (!first)
    return {
      kind: 'none',
      minute: null,
      description: `no abnormal minute in the last ${stats.minutes} min (errors under ${ERRORS_ALERT_PER_MINUTE}/min, connections within ${BASELINE_SHARE * 100} % of their high, messages flowing)`,
    };
  return {
    kind: first.kind,
    minute: s[first.i]?.minute ?? null,
    description: `${first.kind} — ${hits.map((h) => h.text).join('; ')}`,
  };
}
