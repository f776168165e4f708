/**
 * Channel names and their delivery classes (docs/protocol.md#channels-and-delivery-classes). A
 * channel's class comes from its prefix and decides ordering, queueing and recovery.
 */

export type ChannelClass = 'state' | 'stream' | 'alert' | 'broadcast';

export const SYSTEM_CHANNEL = 'system';

const ACCOUNT = '[A-Za-z0-9][A-Za-z0-9_.-]{0,63}';
const CHANNEL_PATTERNS: readonly (readonly [RegExp, ChannelClass])[] = [
  [new RegExp(`^positions:(${ACCOUNT})$`), 'state'],
  [new RegExp(`^risk:(${ACCOUNT})$`), 'alert'],
  [new RegExp(`^signals(?::${ACCOUNT})?$`), 'stream'],
  [/^system$/, 'broadcast'],
];

export interface ChannelInfo {
  readonly name: string;
  readonly class: ChannelClass;
  /** The account a `positions:` or `risk:` channel belongs to; null for shared channels. */
  readonly account: string | null;
}

/** Parses a channel name; returns null when it is not a channel archon-ws knows. */
export function parseChannel(name: string): ChannelInfo | null {
  for (const [pattern, cls] of CHANNEL_PATTERNS) {
    const match = pattern.exec(name);
    if (match) return { name, class: cls, account: match[1] ?? null };
  }
  return null;
}

/** Stream and alert channels keep ordered history and can be resumed with `since`. */
export function isReplayable(cls: ChannelClass): boolean {
  return cls === 'stream' || cls === 'alert';
}
