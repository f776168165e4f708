/** Doctor's remedies, findings, their collector, and the context every rule is given. */
import type { SuccessCheck } from '../../protocol/index.js';
import type { Instance } from '../commands/status.js';
import type { Evidence } from './evidence.js';

export type Remedy =
  | 'fix-a'
  | 'fix-b'
  | 'fix-c'
  | 'fix-d'
  | 'step-4'
  | 'backplane'
  | 'clients'
  | 'refused'
  | 'alerts'
  | 'escalate';

export const REMEDIES: Record<Remedy, { title: string; commands: readonly string[] }> = {
  'fix-a': { title: 'Fix A: Restart Stale Connections', commands: ['archon-ws cleanup'] },
  'fix-b': { title: 'Fix B: Clear Message Queue', commands: ['archon-ws flush'] },
  'fix-c': {
    title: 'Fix C: Restart WebSocket Manager',
    commands: [
      'docker service update --force archon_api',
      'docker restart $(docker ps -q --filter name=archon_api.<slot>)',
    ],
  },
  'fix-d': { title: 'Fix D: Scale Up', commands: ['docker service scale archon_api=<n>'] },
  'step-4': {
    title: 'Step 4: Load Balancer Fixes',
    commands: ['archon-ws check-lb --idle 90s'],
  },
  backplane: {
    title: 'Redis backplane down (alert ArchonWebSocketBackplaneDown; not one of Fix A–D)',
    commands: [
      'redis-cli -u "$ARCHON_REDIS_URL" ping',
      // A redis+cluster:// URL is not one redis-cli reads: ask one of its nodes.
      'redis-cli -c -h <node> -p <port> cluster info   # Redis Cluster (redis+cluster://)',
    ],
  },
  clients: {
    title: 'Client-side errors (not a gateway fault)',
    commands: ['archon-ws connections --group-by client_version', 'archon-ws stats --minutes 60'],
  },
  refused: {
    title:
      'Hostile or broken clients refused by the gateway (docs/security.md; not a gateway fault)',
    commands: [
      'archon-ws connections --group-by addr',
      'curl -s $ARCHON_URL/metrics | grep -E "connections_(unauthenticated|rejected_total)"',
    ],
  },
  alerts: {
    title:
      'Risk alerts waiting for acknowledgement (alert ArchonRiskAlertUnacknowledged; call the desk, not a gateway fault)',
    commands: [
      'archon-ws alerts',
      'curl -s "$ARCHON_URL/api/v1/admin/alerts?state=unacked" -H "Authorization: Bearer $ADMIN_TOKEN"',
    ],
  },
  escalate: {
    title: 'Unexplained: escalate (Team Lead)',
    commands: ['archon-ws stats --minutes 60', 'archon-ws status'],
  },
};

export type Severity = 'critical' | 'warning';

export interface Finding {
  remedy: Remedy;
  title: string;
  severity: Severity;
  /** Why, with figures: one sentence per piece of evidence. */
  evidence: string[];
  /** The runbook's commands for this fix, with placeholders filled in where known. */
  commands: string[];
}

/** The findings so far, one per remedy: adding to a remedy already found adds its new
 * evidence lines, raises it to critical if asked, and replaces its commands if given. */
export class Findings {
  readonly list: Finding[] = [];

  add(remedy: Remedy, severity: Severity, evidence: string[], commands?: string[]): void {
    const existing = this.list.find((f) => f.remedy === remedy);
    if (existing) {
      for (const e of evidence) if (!existing.evidence.includes(e)) existing.evidence.push(e);
      if (severity === 'critical') existing.severity = 'critical';
      if (commands) existing.commands = commands;
      return;
    }
    this.list.push({
      remedy,
      title: REMEDIES[remedy].title,
      severity,
      evidence,
      commands: commands ?? [...REMEDIES[remedy].commands],
    });
  }

  has(remedy: Remedy): boolean {
    return this.list.some((f) => f.remedy === remedy);
  }
}

/** Fix C's commands: a restart of the named instances, or of every one when none is named. */
export function fixCCommands(servers: readonly string[]): string[] {
  if (servers.length === 0) return [...REMEDIES['fix-c'].commands];
  return [
    ...servers.map(
      (s) => `docker restart $(docker ps -q --filter name=archon_api.<slot of ${s}>)  # ${s} only`,
    ),
    'docker service update --force archon_api  # every instance, one by one',
  ];
}

/** What the rules share while they run, besides the evidence: what earlier rules found or
 * noted (a later rule may read it, e.g. `findings.has('fix-b')`), and figures derived once. */
export interface RuleContext {
  findings: Findings;
  /** Worth knowing, not a fault. */
  notes: string[];
  /** What could not be checked. */
  unchecked: string[];
  /** Failing success criteria that a note accounts for (not a fault). */
  explained: Set<string>;
  /** The RB-003 success criteria, judged on the status and stats answers. */
  criteria: SuccessCheck[];
  /** The instances that answered (status.instances less missing_instances). */
  live: Instance[];
  /** The instances that registered but did not answer. */
  missing: Set<string>;
  /** The stats window, as evidence lines say it ("15 min"). */
  window: string;
}

/** One rule of doctor: reads the evidence, adds findings, notes or what it could not check. */
export type Rule = (ev: Evidence, cx: RuleContext) => void;
