/**
 * RB-003 section 5's success criteria, judged from the admin API's status and stats answers.
 * One definition for `archon-ws verify`, `archon-ws doctor` and the operator console.
 */

export interface SuccessCheck {
  name: string;
  pass: boolean;
  /** The measured number the criterion judges. */
  value: number;
  figure: string;
  threshold: string;
}

export interface CriteriaInput {
  active_connections: number;
  peak_connections: number;
  queue_depth: number;
  broadcast_latency_p99_ms: number;
  /** From GET …/stats (the CLI reads 5 minutes). */
  errors_per_minute: number;
  /** The window errors_per_minute was measured over, minutes. */
  minutes: number;
}

/** Connections count as back to baseline at this share of the peak. */
export const BASELINE_SHARE = 0.8;
export const MAX_ERRORS_PER_MINUTE = 1;
export const MAX_QUEUE_DEPTH = 100;
export const MAX_BROADCAST_P99_MS = 500;

// The runbook's alert thresholds (RB-003 section 2 and the prevention rules of section 6), as
// deploy/prometheus/alerts.yml fires them: doctor, the console and a test of the rules read
// them from here.
export const ERRORS_ALERT_PER_MINUTE = 10;
export const QUEUE_ALERT = 1000;
/** Prevention (section 6): a queue building up before it becomes an incident. */
export const QUEUE_WARN = 500;
export const LATENCY_ALERT_MS = 1000;
/** A risk alert unacknowledged this long fires ArchonRiskAlertUnacknowledged (an addition to
 * RB-003; docs/protocol.md#acknowledged-risk-alerts). */
export const ALERT_UNACKED_ALERT_SECONDS = 120;
/** An instance this full needs room (Fix D). */
export const CAPACITY_SHARE = 0.9;
/** Event-loop lag p99 of a busy instance, and of one that is stuck. */
export const LAG_BUSY_MS = 200;
export const LAG_STUCK_MS = 1000;

const round2 = (v: number) => Math.round(v * 100) / 100;

export function successCriteria(input: CriteriaInput): SuccessCheck[] {
  const { active_connections: active, peak_connections: peak } = input;
  const baselineThreshold = `>= ${BASELINE_SHARE * 100} % of peak`;
  const baseline: SuccessCheck =
    peak === 0
      ? {
          name: 'connections back to baseline',
          pass: true,
          value: active,
          figure: `${active} active, no baseline (peak today 0)`,
          threshold: baselineThreshold,
        }
      : {
          name: 'connections back to baseline',
          pass: active >= BASELINE_SHARE * peak,
          value: active / peak,
          figure: `${active} of peak ${peak} (${Math.round((active / peak) * 100)} %)`,
          threshold: baselineThreshold,
        };
  return [
    baseline,
    {
      name: 'error rate',
      pass: input.errors_per_minute < MAX_ERRORS_PER_MINUTE,
      value: input.errors_per_minute,
      figure: `${round2(input.errors_per_minute)}/min over ${input.minutes} min`,
      threshold: `< ${MAX_ERRORS_PER_MINUTE}/min`,
    },
    {
      name: 'queue depth',
      pass: input.queue_depth < MAX_QUEUE_DEPTH,
      value: input.queue_depth,
      figure: String(input.queue_depth),
      threshold: `< ${MAX_QUEUE_DEPTH}`,
    },
    {
      name: 'broadcast latency p99',
      pass: input.broadcast_latency_p99_ms < MAX_BROADCAST_P99_MS,
      value: input.broadcast_latency_p99_ms,
      figure: `${round2(input.broadcast_latency_p99_ms)} ms`,
      threshold: `< ${MAX_BROADCAST_P99_MS} ms`,
    },
  ];
}
