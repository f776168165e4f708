/**
 * The monitoring as shipped: the Prometheus rules for RB-003 (deploy/prometheus/alerts.yml)
 * pass `promtool check rules` and their unit tests (alerts.test.yml), every alert carries
 * what the on-call needs (severity, summary, description, a runbook link that lands on a
 * heading of docs/runbooks/RB-003), and every metric an alert or a Grafana panel
 * (deploy/grafana/archon-ws.json) queries is one a running gateway exports: a renamed
 * metric fails here instead of leaving an alert that can never fire.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  ALERT_UNACKED_ALERT_SECONDS,
  BASELINE_SHARE,
  ERRORS_ALERT_PER_MINUTE,
  LATENCY_ALERT_MS,
  QUEUE_ALERT,
  QUEUE_WARN,
} from '../../src/protocol/index.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { metricsText } from '../support/metrics.js';

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const RULES = join(ROOT, 'deploy', 'prometheus', 'alerts.yml');
const RULE_TESTS = join(ROOT, 'deploy', 'prometheus', 'alerts.test.yml');
const DASHBOARD = join(ROOT, 'deploy', 'grafana', 'archon-ws.json');
const RUNBOOK = join(ROOT, 'docs', 'runbooks', 'RB-003-websocket-degradation.md');
const RUNBOOK_URL =
  'https://github.com/archon/archon-ws/blob/main/docs/runbooks/RB-003-websocket-degradation.md';

/** Series Prometheus writes itself for every scrape target: archon-ws cannot export them. */
const PROMETHEUS_SERIES = new Set(['up']);

/** The week-long connection test evaluates every rule 10,000 times: allow for a busy CI. */
const PROMTOOL_TIMEOUT_MS = 180_000;

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}

interface RuleTestFile {
  tests: {
    name?: string;
    alert_rule_test?: { alertname: string; eval_time: string; exp_alerts?: unknown[] }[];
  }[];
}

interface Target {
  expr?: string;
}

interface Panel {
  type: string;
  title?: string;
  description?: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}

interface Dashboard {
  schemaVersion: number;
  panels: Panel[];
  templating: {
    list: { name: string; type: string; query?: string | { query?: string } }[];
  };
}

/** Words of PromQL that are not metric names where an identifier may stand. */
const PROMQL_KEYWORDS = new Set(['and', 'or', 'unless', 'offset', 'bool', 'atan2', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects. Strings, label matchers, ranges and the
 * label lists of by/without/on/ignoring/group_* are dropped first; of what is left, an
 * identifier followed by `(` is a function or an aggregation, the others are metrics.
 */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/(?<![\w:.$])[a-zA-Z_:][\w:]*(?![\w:]|\s*\()/g)) {
    if (!PROMQL_KEYWORDS.has(match[0].toLowerCase())) names.add(match[0]);
  }
  return [...names];
}

/** Every series name a query can select in a Prometheus exposition, from its `# TYPE` lines
 * (labelled counters appear there before their first sample) and its samples. A histogram
 * `h` has no series `h` of its own, only h_bucket, h_sum and h_count. */
export function exportedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const line of exposition.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      const [, name = '', kind] = type;
      if (kind === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
      else names.add(name);
      if (kind === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
      continue;
    }
    const sample = /^([a-zA-Z_:][\w:]*)[{ ]/.exec(line);
    if (sample?.[1]) names.add(sample[1]);
  }
  return names;
}

/** The anchors GitHub gives a Markdown file's headings (code blocks skipped). */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let inFence = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) inFence = !inFence;
    const heading = inFence ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading?.[1]) continue;
    const slug = heading[1]
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

/** Every panel of a dashboard, including those nested in (collapsed) rows. */
function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

function findPromtool(): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin'];
  for (const dir of dirs.filter((d) => d.length > 0)) {
    const candidate = join(dir, 'promtool');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new Error(
    'promtool is not installed (Debian package `prometheus`; .ci/run should install it)',
  );
}

/** Runs promtool; an exit code other than 0 fails with its output. */
async function promtool(...args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await exec(findPromtool(), args, {
      cwd: ROOT,
      timeout: PROMTOOL_TIMEOUT_MS,
    });
    return stdout + stderr;
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    throw new Error(
      `promtool ${args.join(' ')} exited with ${String(e.code)}:\n${e.stdout ?? ''}${e.stderr ?? ''}`,
      { cause: err },
    );
  }
}

const rules = parse(readFileSync(RULES, 'utf8')) as RuleFile;
const alerts = rules.groups.flatMap((g) => g.rules).filter((r) => r.alert !== undefined);
const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const dashboardTargets = allPanels(dashboard.panels).flatMap((p) =>
  (p.targets ?? []).map((t) => ({ panel: p.title ?? '?', expr: t.expr ?? '' })),
);

describe('metric names in PromQL', () => {
  it('finds the selected metrics and nothing else', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le) (rate(a_bucket{server=~"$server", x="b c"}[5m]))) > 1',
      ),
    ).toEqual(['a_bucket']);
    expect(metricNames('(sum(a) or vector(0)) < 0.8 * sum(a offset 1w) and sum(b) >= 20')).toEqual([
      'a',
      'b',
    ]);
    expect(metricNames('max_over_time(sum(c)[1h:1m]) unless on (server) d == bool 0')).toEqual([
      'c',
      'd',
    ]);
    expect(metricNames('sum without (type) (rate(e[$__rate_interval])) * 60')).toEqual(['e']);
  });

  it('knows the anchors GitHub makes of headings', () => {
    const anchors = headingAnchors(
      "## 2. How It's Detected\n```bash\n# Not a heading\n```\n### Step 1: Assess Scope (3 minutes)\n",
    );
    expect([...anchors]).toEqual(['2-how-its-detected', 'step-1-assess-scope-3-minutes']);
  });
});

describe('deploy/prometheus/alerts.yml', () => {
  it(
    'passes `promtool check rules`',
    async () => {
      const out = await promtool('check', 'rules', RULES);
      expect(out).toContain(`SUCCESS: ${alerts.length} rules found`);
    },
    PROMTOOL_TIMEOUT_MS,
  );

  it(
    'passes its unit tests (`promtool test rules deploy/prometheus/alerts.test.yml`)',
    async () => {
      const out = await promtool('test', 'rules', RULE_TESTS);
      expect(out).toContain('SUCCESS');
    },
    PROMTOOL_TIMEOUT_MS + 10_000,
  );

  it('has the four detection alerts of RB-003 §2 (critical, P2) and its three prevention alerts of §6 (warning)', () => {
    const byCategory = (c: string) => alerts.filter((a) => a.labels?.category === c);
    expect(byCategory('detection')).toHaveLength(4);
    expect(byCategory('prevention')).toHaveLength(3);
    for (const a of byCategory('detection')) {
      expect(a.labels, a.alert).toMatchObject({ severity: 'critical', priority: 'P2' });
    }
    for (const a of byCategory('prevention')) {
      expect(a.labels?.severity, a.alert).toBe('warning');
    }
    expect(byCategory('addition').map((a) => a.alert)).toEqual([
      'ArchonWebSocketBackplaneDown',
      'ArchonRiskAlertUnacknowledged',
      'ArchonWebSocketInstanceDown',
    ]);
    expect(alerts).toHaveLength(10);
    expect(new Set(alerts.map((a) => a.alert)).size).toBe(alerts.length);
    expect(new Set(alerts.map((a) => a.expr.replace(/\s+/g, ' ').trim())).size).toBe(alerts.length);
  });

  it('fires at the thresholds doctor and the console read from src/protocol', () => {
    const expr = (name: string) =>
      (alerts.find((a) => a.alert === name)?.expr ?? '').replace(/\s+/g, ' ').trim();
    expect(expr('ArchonRiskAlertUnacknowledged')).toBe(
      `max(archon_websocket_alert_unacked_oldest_seconds) > ${ALERT_UNACKED_ALERT_SECONDS}`,
    );
    expect(expr('ArchonWebSocketErrorRateHigh')).toMatch(
      new RegExp(`\\* 60 > ${ERRORS_ALERT_PER_MINUTE}$`),
    );
    expect(expr('ArchonWebSocketInstanceErrorRateHigh')).toMatch(
      new RegExp(`\\* 60 > ${ERRORS_ALERT_PER_MINUTE}$`),
    );
    expect(expr('ArchonWebSocketQueueBacklog')).toMatch(new RegExp(`> ${QUEUE_ALERT}$`));
    expect(expr('ArchonWebSocketQueueGrowing')).toMatch(new RegExp(`> ${QUEUE_WARN}$`));
    expect(expr('ArchonWebSocketBroadcastLatencyHigh')).toMatch(
      new RegExp(`\\) > ${LATENCY_ALERT_MS / 1000}$`),
    );
    for (const name of [
      'ArchonWebSocketConnectionsBelowExpected',
      'ArchonWebSocketConnectionsDropped',
    ])
      expect(expr(name)).toContain(`< ${BASELINE_SHARE} *`);
  });

  it('gives every alert a severity, a summary, a description, a `for` and a link to an RB-003 heading', () => {
    const anchors = headingAnchors(readFileSync(RUNBOOK, 'utf8'));
    for (const a of alerts) {
      expect(['critical', 'warning'], a.alert).toContain(a.labels?.severity);
      expect(a.for, a.alert).toMatch(/^\d+[smh]$/);
      expect(a.annotations?.summary?.trim(), a.alert).toBeTruthy();
      expect(a.annotations?.description?.trim(), a.alert).toBeTruthy();
      const url = a.annotations?.runbook_url ?? '';
      expect(url.startsWith(`${RUNBOOK_URL}#`), `${a.alert}: ${url}`).toBe(true);
      expect(anchors, `${a.alert}: ${url}`).toContain(url.slice(RUNBOOK_URL.length + 1));
    }
  });

  it('names the instance in the text of every alert that is per instance', () => {
    for (const a of alerts) {
      // Per instance: grouped by server, or not aggregated at all.
      const perServer =
        /\bby\s*\(\s*server\s*\)/.test(a.expr) || !/\b(sum|min|max|avg|count)\b/.test(a.expr);
      if (!perServer) continue;
      const label = /(?<![\w:])up\{/.test(a.expr) ? 'instance' : 'server';
      expect(a.annotations?.summary, a.alert).toContain(`{{ $labels.${label} }}`);
      expect(a.annotations?.description, a.alert).toContain(`{{ $labels.${label} }}`);
    }
  });

  it('tests every alert firing and not firing', () => {
    const file = parse(readFileSync(RULE_TESTS, 'utf8')) as RuleTestFile;
    const cases = file.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const a of alerts) {
      const mine = cases.filter((c) => c.alertname === a.alert);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length > 0),
        `${a.alert} never fires`,
      ).toBe(true);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length === 0),
        `${a.alert} never stays quiet`,
      ).toBe(true);
    }
  });
});

describe('metrics queried by the alerts and the dashboard', () => {
  let tg: TestGateway;
  let exported: Set<string>;

  beforeAll(async () => {
    tg = await startGateway();
    exported = exportedNames(await metricsText(tg));
  });
  afterAll(() => tg.stop());

  it('reads the exposition of a running gateway', () => {
    expect(exported).toContain('archon_websocket_connections_active');
    expect(exported).toContain('archon_websocket_broadcast_duration_seconds_bucket');
    expect(exported).not.toContain('archon_websocket_broadcast_duration_seconds');
  });

  it('alerts only on metrics a gateway exports (or on Prometheus’s own `up`)', () => {
    for (const a of alerts) {
      const names = metricNames(a.expr);
      expect(names.length, a.alert).toBeGreaterThan(0);
      for (const name of names) {
        if (PROMETHEUS_SERIES.has(name)) continue;
        expect(exported, `${a.alert} queries ${name}`).toContain(name);
      }
    }
  });

  it('charts only metrics a gateway exports', () => {
    expect(dashboardTargets.length).toBeGreaterThan(0);
    for (const { panel, expr } of dashboardTargets) {
      const names = metricNames(expr);
      expect(names.length, `${panel}: ${expr}`).toBeGreaterThan(0);
      for (const name of names) expect(exported, `${panel} queries ${name}`).toContain(name);
    }
  });

  it('lists the servers from a metric a gateway exports', () => {
    const server = dashboard.templating.list.find((v) => v.name === 'server');
    const query = typeof server?.query === 'string' ? server.query : server?.query?.query;
    expect(query).toBe('label_values(archon_websocket_connections_active, server)');
    expect(exported).toContain('archon_websocket_connections_active');
  });
});

describe('deploy/grafana/archon-ws.json', () => {
  const dir = mkdtempSync(join(tmpdir(), 'archon-dashboard-promql-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('queries Prometheus through the ${DS_PROMETHEUS} variable, filtered by $server', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    const ds = dashboard.templating.list.find((v) => v.name === 'DS_PROMETHEUS');
    expect(ds).toMatchObject({ type: 'datasource', query: 'prometheus' });
    for (const p of allPanels(dashboard.panels).filter((p) => p.type !== 'row')) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${DS_PROMETHEUS}' });
      for (const t of p.targets ?? []) expect(t.expr, p.title).toContain('server=~"$server"');
    }
  });

  it('says in every panel which RB-003 question it answers', () => {
    for (const p of allPanels(dashboard.panels).filter((p) => p.type !== 'row')) {
      expect(p.description, p.title).toMatch(/RB-003/);
    }
  });

  it(
    'has PromQL that Prometheus parses (checked by promtool as recording rules)',
    async () => {
      const file = join(dir, 'dashboard-rules.yml');
      const record = dashboardTargets.map((t, i) => ({
        record: `dashboard:target_${i}`,
        // Grafana's variables, as Grafana would fill them in.
        expr: t.expr.replaceAll('$__rate_interval', '1m').replaceAll('$server', '.*'),
      }));
      writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules: record }] }));
      const out = await promtool('check', 'rules', file);
      expect(out).toContain(`SUCCESS: ${record.length} rules found`);
    },
    PROMTOOL_TIMEOUT_MS,
  );
});
