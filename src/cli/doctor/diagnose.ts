/**
 * The judgement of `archon-ws doctor`: collected evidence in, findings out, each naming the
 * RB-003 fix it points to and the figures that say so. Pure (no I/O, no clock), so a unit
 * test can walk every branch with evidence shaped like a real gateway's.
 *
 * The fixes are the runbook's own (docs/runbooks/RB-003-websocket-degradation.md, Step 3):
 * Fix A restarts stale connections (cleanup), Fix B clears message queues (flush), Fix C
 * restarts the WebSocket manager (a rolling restart of the instances), Fix D scales up.
 * Load balancer problems are Step 4. A Redis backplane outage is not one of Fix A–D
 * (restarting or scaling instances does not bring Redis back): it is named as what it is.
 *
 * Risk alerts left unacknowledged past the threshold of ArchonRiskAlertUnacknowledged are named
 * too: not a gateway fault, but that alert pages the operator all the same, and the desk must
 * be called.
 *
 * Ordinary situations are not faults: fewer clients than at today's peak without a drop in
 * the per-minute series (the evening), a drop explained by normal closes, a restart or an
 * operator cleanup (1000/1001/1012/4010), or one too small to judge (a small deployment).
 * Those become notes. A test endpoint too busy to probe is "not checked", not a fault.
 *
 * The judgement is a table of rules (rules.ts), run in order on one shared context: this file
 * builds the context, runs them and assembles the diagnosis.
 */
import { successCriteria, type SuccessCheck } from '../../protocol/index.js';
import { liveInstances } from '../commands/status.js';
import type { Evidence } from './evidence.js';
import { Findings, type Finding, type RuleContext } from './findings.js';
import { findOnset, type Onset } from './onset.js';
import { RULES } from './rules.js';

export {
  REMEDIES,
  type Finding,
  type Remedy,
  type Rule,
  type RuleContext,
  type Severity,
} from './findings.js';
export { connectionDrop, findOnset, type ConnectionDrop, type Onset } from './onset.js';
export { DROP_SHARE, MIN_LOST, ORDINARY_CLOSES } from './client-rules.js';
export { RULES } from './rules.js';

export interface Diagnosis {
  healthy: boolean;
  verdict: string;
  findings: Finding[];
  criteria: SuccessCheck[];
  onset: Onset;
  /** Worth knowing, not a fault (a restart in progress, assumptions made). */
  notes: string[];
  /** What could not be checked (the test endpoint busy): "no fault" does not cover it. */
  unchecked: string[];
}

/** A fresh context for the rules: nothing found yet, and the figures they share. */
export function ruleContext(ev: Evidence): RuleContext {
  const { status, stats } = ev;
  const missing = new Set(status.missing_instances);
  return {
    findings: new Findings(),
    notes: [],
    unchecked: [],
    explained: new Set<string>(),
    criteria: successCriteria({
      ...status,
      errors_per_minute: stats.errors_per_minute,
      minutes: stats.minutes,
    }),
    live: liveInstances(status),
    missing,
    window: `${stats.minutes} min`,
  };
}

/** Evidence in, findings out: every rule in order, then the verdict. */
export function diagnose(ev: Evidence): Diagnosis {
  const cx = ruleContext(ev);
  for (const rule of RULES) rule(ev, cx);
  return assemble(ev, cx);
}

/** The diagnosis from what the rules left in the context: findings critical first. */
function assemble(ev: Evidence, cx: RuleContext): Diagnosis {
  const { lb } = ev;
  const { criteria, explained, live, notes, unchecked } = cx;
  const baseline = criteria[0];
  const failing = criteria.filter((c) => !c.pass && !explained.has(c.name));
  const onset = findOnset(ev.stats);
  const findings = cx.findings.list.sort((a, b) =>
    a.severity === b.severity ? 0 : a.severity === 'critical' ? -1 : 1,
  );
  const healthy = findings.length === 0;
  const explainedText = [...explained]
    .map((name) =>
      name === baseline?.name
        ? "connections below today's peak with no fault behind it"
        : `${name} still above target with no current cause`,
    )
    .join('; ');
  const lbText =
    lb.verdict === 'pass'
      ? `the load balancer upgrades and echoes (${lb.server ?? '?'} answered)`
      : `the load balancer was not checked: ${lb.busy ?? 'its checks could not run'}`;
  return {
    healthy,
    verdict: healthy
      ? `no fault found: ${failing.length === 0 && explained.size === 0 ? `all ${criteria.length} success criteria pass` : `${explainedText} (see notes)`}, ${lbText}, ${live.length} instance(s) healthy`
      : `${findings.length} finding(s): ${findings.map((x) => x.title.replace(/ \(.*$/, '')).join('; ')}`,
    findings,
    criteria,
    onset,
    notes,
    unchecked,
  };
}
