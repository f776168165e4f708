/** Doctor's rule on risk alerts nobody acknowledges (an addition to RB-003). */
import { ALERT_UNACKED_ALERT_SECONDS } from '../../protocol/index.js';
import { age, deliveredTo } from '../commands/alerts.js';
import type { Rule } from './findings.js';

/**
 * Risk alerts waiting longer than ArchonRiskAlertUnacknowledged allows: a person has to act
 * (call the desk), not the gateway, so it names whose dashboards each reached. An alert
 * delivered to nobody means no dashboard of its account is open: it waits for the next
 * sign-in. Alerts that could not be read are "not checked"; a gateway without the endpoint
 * has nothing to check.
 */
export const unacknowledgedAlerts: Rule = (ev, cx) => {
  const a = ev.alerts;
  if (a.kind === 'failed') {
    cx.unchecked.push(`the risk alerts waiting (${a.error})`);
    cx.notes.push(`risk alerts waiting for acknowledgement not checked: ${a.error}`);
    return;
  }
  const oldest = a.kind === 'read' ? a.oldest_unacked_seconds : null;
  if (a.kind !== 'read' || oldest === null || oldest <= ALERT_UNACKED_ALERT_SECONDS) return;
  const late = a.oldest.filter((x) => x.age_seconds > ALERT_UNACKED_ALERT_SECONDS);
  cx.findings.add('alerts', 'critical', [
    `${a.unacked} risk alert(s) waiting for acknowledgement, the oldest for ${age(oldest)} (ArchonRiskAlertUnacknowledged fires past ${ALERT_UNACKED_ALERT_SECONDS} s)`,
    ...late.map((x) => {
      const account = x.channel.replace(/^risk:/, '');
      const reached =
        Object.keys(x.deliveries).length === 0
          ? `delivered to nobody: no dashboard of ${account} is open (it waits for the next sign-in)`
          : `delivered to ${deliveredTo(x.deliveries)}, not acknowledged`;
      return `${x.channel} seq ${x.seq}, ${age(x.age_seconds)} old: ${reached}`;
    }),
  ]);
};
