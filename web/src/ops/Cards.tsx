import {
  BASELINE_SHARE,
  CAPACITY_SHARE,
  ERRORS_ALERT_PER_MINUTE,
  LAG_BUSY_MS,
  LAG_STUCK_MS,
  LATENCY_ALERT_MS,
  MAX_BROADCAST_P99_MS,
  MAX_ERRORS_PER_MINUTE,
  MAX_QUEUE_DEPTH,
  QUEUE_WARN,
  type StatusAnswer,
} from '../../../src/client/index.js';
import { int, megabytes, millis } from '../shared/format.js';

type Tone = 'good' | 'warn' | 'bad';

function Stat(props: {
  readonly name: string;
  readonly value: string;
  readonly sub?: string;
  readonly tone: Tone;
  readonly id: string;
}) {
  return (
    <div class={`stat ${props.tone}`} data-testid={`card-${props.id}`}>
      <div class="name">{props.name}</div>
      <div class="value">{props.value}</div>
      {props.sub !== undefined && <div class="sub">{props.sub}</div>}
    </div>
  );
}

const by = (value: number, warn: number, bad: number): Tone =>
  value >= bad ? 'bad' : value >= warn ? 'warn' : 'good';

/** RB-003 Step 1 at a glance, with the runbook's thresholds as colours. */
export function Cards({ status }: { readonly status: StatusAnswer }) {
  const s = status;
  const share = s.peak_connections > 0 ? s.active_connections / s.peak_connections : 1;
  const capacity = s.max_connections > 0 ? s.active_connections / s.max_connections : 0;
  return (
    <div class="cards">
      <Stat
        id="active"
        name="Active connections"
        value={int(s.active_connections)}
        sub={`${Math.round(share * 100)} % of peak · max ${int(s.max_connections)}`}
        tone={
          share < 0.5
            ? 'bad'
            : share < BASELINE_SHARE || capacity > CAPACITY_SHARE
              ? 'warn'
              : 'good'
        }
      />
      <Stat
        id="peak"
        name="Peak today"
        value={int(s.peak_connections)}
        sub="baseline for recovery"
        tone="good"
      />
      <Stat
        id="errors"
        name="Errors last hour"
        value={int(s.errors_last_hour)}
        sub={`alert at > ${ERRORS_ALERT_PER_MINUTE}/min`}
        tone={by(s.errors_last_hour, 60 * MAX_ERRORS_PER_MINUTE, 60 * ERRORS_ALERT_PER_MINUTE)}
      />
      <Stat
        id="queue"
        name="Queue depth"
        value={int(s.queue_depth)}
        sub={`target < ${MAX_QUEUE_DEPTH} · warn > ${QUEUE_WARN}`}
        tone={by(s.queue_depth, MAX_QUEUE_DEPTH, QUEUE_WARN)}
      />
      <Stat
        id="p99"
        name="Broadcast p99"
        value={millis(s.broadcast_latency_p99_ms)}
        sub={`target < ${MAX_BROADCAST_P99_MS} ms`}
        tone={by(s.broadcast_latency_p99_ms, MAX_BROADCAST_P99_MS, LATENCY_ALERT_MS)}
      />
      <Stat
        id="lag"
        name="Event-loop lag p99"
        value={millis(s.event_loop_lag_p99_ms)}
        sub="CPU starved when high"
        tone={by(s.event_loop_lag_p99_ms, LAG_BUSY_MS, LAG_STUCK_MS)}
      />
      <Stat
        id="memory"
        name="Memory (RSS)"
        value={megabytes(s.memory.rss_bytes)}
        sub={`heap ${megabytes(s.memory.heap_used_bytes)}`}
        tone="good"
      />
    </div>
  );
}

/** One row per instance: the cluster view of Step 1. */
export function Instances({ status }: { readonly status: StatusAnswer }) {
  const missing = status.missing_instances ?? [];
  return (
    <section class="card" data-testid="instances">
      <header>
        <h2>Instances</h2>
        <span class="muted">{status.mode} mode</span>
      </header>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>Server</th>
              <th class="num">Active</th>
              <th class="num">Queue</th>
              <th class="num">p99</th>
              <th class="num hide-narrow">Lag p99</th>
              <th class="num hide-narrow">RSS</th>
              <th>Health</th>
            </tr>
          </thead>
          <tbody>
            {status.instances.map((i) => (
              <tr key={i.server}>
                <td>{i.server}</td>
                <td class="num">{int(i.active_connections)}</td>
                <td class="num">{int(i.queue_depth)}</td>
                <td class="num">{millis(i.broadcast_latency_p99_ms)}</td>
                <td class="num hide-narrow">{millis(i.event_loop_lag_p99_ms)}</td>
                <td class="num hide-narrow">{megabytes(i.memory.rss_bytes)}</td>
                <td class={i.healthy ? 'up' : 'down'}>
                  {i.healthy
                    ? 'healthy'
                    : i.draining
                      ? 'draining'
                      : !i.backplane.healthy
                        ? 'backplane down'
                        : 'unhealthy'}
                </td>
              </tr>
            ))}
            {missing.map((server) => (
              <tr key={server}>
                <td>{server}</td>
                <td class="down" colSpan={6}>
                  did not answer (down, or unreachable over Redis)
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
