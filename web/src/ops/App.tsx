import { useEffect, useMemo, useState } from 'preact/hooks';
import {
  successCriteria,
  type ConnectionEntry,
  type StatsAnswer,
  type StatusAnswer,
} from '../../../src/client/index.js';
import { Actions } from './Actions.js';
import { AdminClient, AdminError, type WaitingAlerts } from './api.js';
import { Cards, Instances } from './Cards.js';
import { Chart } from './Chart.js';
import { Criteria } from './Criteria.js';
import { Groups } from './Groups.js';
import { RiskAlerts } from './RiskAlerts.js';
import { ago } from '../shared/format.js';
import { useNow, useSession } from '../shared/hooks.js';
import { SignIn } from '../shared/SignIn.js';

const SESSION_KEY = 'archon.ops.session';
const POLL_MS = 5000;

interface Snapshot {
  readonly status: StatusAnswer;
  readonly connections: ConnectionEntry[];
  readonly hour: StatsAnswer;
  readonly recent: StatsAnswer;
  readonly alerts: WaitingAlerts;
  readonly at: number;
}

export function App() {
  const { session, problem, signIn, signOut } = useSession(SESSION_KEY);
  if (session === null)
    return (
      <SignIn
        title="Archon operator console"
        label="Admin token"
        hint="One of ARCHON_ADMIN_TOKENS. Tip: open /ops#token=… to sign in directly; the token stays in this tab only."
        problem={problem}
        onSubmit={(token) => signIn({ token, accounts: [] })}
      />
    );
  return <Console token={session.token} onSignOut={signOut} />;
}

function Console({
  token,
  onSignOut,
}: {
  readonly token: string;
  readonly onSignOut: (why: string | null) => void;
}) {
  const [api] = useState(() => new AdminClient(token));
  const [data, setData] = useState<Snapshot | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const now = useNow();

  useEffect(() => {
    // One load at a time: the next starts POLL_MS after the previous one ended, so a slow
    // answer can never replace a newer one. `at` is when the figures were asked for.
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = async () => {
      const at = Date.now();
      try {
        const [status, connections, hour, recent, alerts] = await Promise.all([
          api.status(),
          api.connections(),
          api.stats(60),
          api.stats(5),
          api.waitingAlerts(),
        ]);
        if (stopped) return;
        setData({ status, connections, hour, recent, alerts, at });
        setError(null);
      } catch (err) {
        if (stopped) return;
        if (err instanceof AdminError && err.refused) {
          onSignOut(`Signed out: ${err.message}`);
          return;
        }
        setError(err instanceof Error ? err.message : String(err));
      }
      if (!stopped) timer = setTimeout(() => void load(), POLL_MS);
    };
    void load();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [api, tick]);

  const refresh = () => setTick((t) => t + 1);
  return (
    <div class="page">
      <header class="topbar">
        <div class="brand">
          Archon <span class="muted">operator console</span>
        </div>
        <div
          class={`indicator ${error ? 'bad' : data ? 'good' : 'warn'}`}
          data-testid="freshness"
          data-state={error ? 'error' : data ? 'ok' : 'loading'}
        >
          <span class="dot" aria-hidden="true" />
          <span class="label">
            {error ? 'Gateway not answering' : data ? 'Up to date' : 'Loading…'}
          </span>
          <span class="last-update">
            {data ? `data from ${ago(data.at, now)} · refreshes every ${POLL_MS / 1000} s` : ''}
          </span>
        </div>
        <div class="who">
          <a class="muted" href="/" target="_blank" rel="noreferrer">
            dashboard
          </a>
          <button type="button" class="link" onClick={refresh}>
            Refresh
          </button>
          <button type="button" class="link" onClick={() => onSignOut(null)}>
            Sign out
          </button>
        </div>
      </header>
      {error && (
        <p class="problem" role="alert">
          {error}
          {data ? ` (figures below are from ${ago(data.at, now)})` : ''}
        </p>
      )}
      {data && <Body data={data} api={api} onDone={refresh} />}
    </div>
  );
}

function Body({
  data,
  api,
  onDone,
}: {
  readonly data: Snapshot;
  readonly api: AdminClient;
  readonly onDone: () => void;
}) {
  // Derived once per answer, not on every one-second tick: a new array would redraw a chart.
  const charts = useMemo(() => chartSeries(data), [data]);
  const checks = successCriteria({
    ...data.status,
    errors_per_minute: data.recent.errors_per_minute,
    minutes: data.recent.minutes,
  });
  return (
    <main>
      <Cards status={data.status} />
      <div class="charts">
        {CHARTS.map((c) => (
          <Chart
            key={c.id}
            id={c.id}
            title={c.title}
            times={charts.times}
            values={charts[c.id]}
            color={c.color}
          />
        ))}
      </div>
      <div class="ops-grid">
        <RiskAlerts waiting={data.alerts} />
        <Criteria checks={checks} />
        <Actions api={api} onDone={onDone} />
        <Instances status={data.status} />
        <Groups connections={data.connections} />
      </div>
    </main>
  );
}

const CHARTS = [
  { id: 'connections', title: 'Connections (last 60 min)', color: '#38bdf8' },
  { id: 'messages', title: 'Messages / min', color: '#34d399' },
  { id: 'errors', title: 'Errors / min', color: '#f87171' },
] as const;

type Column = (typeof CHARTS)[number]['id'];

/** The hour's series as chart columns, from the oldest instance's start. */
function chartSeries(data: Snapshot): Record<Column | 'times', number[]> {
  // Minutes before the oldest instance started are not zeros, they are unknown: leave them out.
  const started = Math.min(...data.status.instances.map((i) => Date.parse(i.started_at)));
  const series = Number.isFinite(started)
    ? data.hour.series.filter((p) => Date.parse(p.minute) + 60_000 > started)
    : data.hour.series;
  return {
    times: series.map((p) => Date.parse(p.minute) / 1000),
    connections: series.map((p) => p.connections),
    messages: series.map((p) => p.messages),
    errors: series.map((p) => p.errors),
  };
}
