/**
 * What to hand the application after a resume answered `recovered:false`: the events
 * GET /api/v1/history still holds between the resume point and the subscription's seq, in
 * seq order, with a gap wherever a hole stays. Pure, so every case is testable.
 */
import type { HistoryAnswer, Since, StoredEvent } from '../protocol/index.js';
import type { Gap, GapReason } from './types.js';

export type RecoveryStep =
  | { readonly kind: 'gap'; readonly gap: Gap }
  | { readonly kind: 'event'; readonly event: StoredEvent };

/**
 * @param since the resume point sent in `subscribe` (last event received)
 * @param subscribed epoch and seq of the `subscribed` answer: live events follow from seq + 1
 * @param answer the history answer, or null when it could not be read
 */
export function planRecovery(
  channel: string,
  since: Since,
  subscribed: Since,
  answer: HistoryAnswer | null,
): RecoveryStep[] {
  const steps: RecoveryStep[] = [];
  const epoch = subscribed.epoch;
  const end: Since = { epoch, seq: subscribed.seq + 1 };
  const gap = (reason: GapReason, after: Since, before: Since) =>
    steps.push({ kind: 'gap', gap: { channel, reason, after, before } });

  if (answer === null) {
    gap('history-unavailable', since, end);
    return steps;
  }
  if (answer.epoch !== epoch) {
    // The epoch changed again after the subscribe; the server sends resync for it.
    gap('epoch-changed', since, end);
    return steps;
  }
  const sameEpoch = since.epoch === epoch;
  if (sameEpoch && since.seq >= subscribed.seq) return steps; // nothing was missed
  const reason: GapReason = sameEpoch ? 'trimmed' : 'epoch-changed';
  // A complete answer lacks only events that expired (docs/protocol.md#expiring-events): its
  // holes are not losses.
  const holesExpired = sameEpoch && answer.complete;
  // Across an epoch change the rest of the old epoch is gone even when the new one is whole.
  let holeOpen = !sameEpoch;
  let after = since;
  let expected = sameEpoch ? since.seq + 1 : 1;
  const events = answer.events
    .filter((e) => e.seq >= expected && e.seq <= subscribed.seq)
    .sort((a, b) => a.seq - b.seq);
  for (const event of events) {
    if (event.seq < expected) continue; // a duplicate seq
    if (holeOpen || (event.seq > expected && !holesExpired))
      gap(reason, after, { epoch, seq: event.seq });
    holeOpen = false;
    steps.push({ kind: 'event', event });
    after = { epoch, seq: event.seq };
    expected = event.seq + 1;
  }
  if (holeOpen || (expected <= subscribed.seq && !holesExpired)) gap(reason, after, end);
  return steps;
}
