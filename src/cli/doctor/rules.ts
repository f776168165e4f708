/** Doctor's rules table: every rule, in the order they run (later ones read earlier findings). */
import {
  belowBaseline,
  errorsByType,
  fallbackClients,
  healthPath,
  loadBalancer,
  wsHealthPath,
} from './client-rules.js';
import { unacknowledgedAlerts } from './alert-rules.js';
import type { Rule } from './findings.js';
import {
  backplaneDown,
  drainingInstances,
  nearCapacity,
  queueBacklog,
  slowBroadcasts,
  staleConnections,
  stuckInstances,
  unansweredInstances,
} from './instance-rules.js';

/** Escalate: success criteria failing that no rule found a cause for nor explained. Last. */
export const unexplainedCriteria: Rule = (_ev, cx) => {
  const failing = cx.criteria.filter((c) => !c.pass && !cx.explained.has(c.name));
  if (failing.length > 0 && cx.findings.list.length === 0)
    cx.findings.add(
      'escalate',
      'warning',
      failing.map((c) => `${c.name}: ${c.figure} (${c.threshold})`),
    );
};

/** The order matters: evidence lines and findings keep it, and some rules read what earlier
 * ones found (errors and drops go to Fix B when it was found; escalation only when nothing
 * was). */
export const RULES: readonly Rule[] = [
  backplaneDown, // the Redis backplane
  unansweredInstances, // Fix C: registered, did not answer
  stuckInstances, // Fix C: event loop stuck on some
  drainingInstances, // note: shutting down
  nearCapacity, // Fix D
  queueBacklog, // Fix B
  staleConnections, // Fix A
  loadBalancer, // Step 4 (or Fix C)
  wsHealthPath, // Step 4: /api/v1/ws/health
  healthPath, // Step 4: /api/health
  errorsByType, // reads Fix B
  belowBaseline, // reads Fix B and whether anything was found
  slowBroadcasts, // Fix C / Fix D, reads Fix B
  unexplainedCriteria, // escalate: reads what was explained and found
  fallbackClients, // Step 4: clients on the HTTP streaming fallback; after escalation, as below
  unacknowledgedAlerts, // risk alerts waiting: after escalation, which a finding would stop
];
