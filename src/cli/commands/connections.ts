/**
 * `archon-ws connections`: how connections spread over servers, client versions, users,
 * addresses or transports, and how many of each group are on the HTTP streaming fallback
 * (their WebSocket upgrade does not get through: RB-003 Step 4).
 */
import type { Command } from 'commander';
import { admin, CliError, Exit, resolveTarget } from '../api.js';
import { action, targetOptions, type TargetOptions } from '../common.js';
import { out, table, withProgress } from '../format.js';

const GROUPS = ['server', 'client_version', 'user', 'addr', 'transport'] as const;
type GroupBy = (typeof GROUPS)[number];
/** The field of a connection each grouping reads. */
const FIELD: Record<
  GroupBy,
  'server' | 'client_version' | 'user_id' | 'remote_addr' | 'transport'
> = {
  server: 'server',
  client_version: 'client_version',
  user: 'user_id',
  addr: 'remote_addr',
  transport: 'transport',
};

interface Options extends TargetOptions {
  groupBy: string;
}

export function registerConnections(program: Command): void {
  targetOptions(
    program
      .command('connections')
      .description(
        'connection counts per server, client version, user, client address or transport, with those on the HTTP streaming fallback (RB-003 Step 1, Step 4)',
      )
      .option('--group-by <key>', `group by ${GROUPS.join(', ')}`, 'server'),
  ).action(
    action(async (options: Options) => {
      if (!(GROUPS as readonly string[]).includes(options.groupBy))
        throw new CliError(
          `--group-by must be one of ${GROUPS.join(', ')} (got ${JSON.stringify(options.groupBy)})`,
          Exit.usage,
        );
      const key = options.groupBy as GroupBy;
      const target = resolveTarget(options);
      const json = options.json === true;
      const body = await withProgress(
        `asking ${target.url}`,
        json,
        admin(target, 'GET', '/websocket/connections'),
      );
      // Per group: its connections, and of them those on the HTTP streaming fallback.
      const counts = new Map<string | null, { count: number; sse: number }>();
      for (const c of body) {
        const group = c[FIELD[key]];
        const n = counts.get(group) ?? { count: 0, sse: 0 };
        n.count++;
        if (c.transport === 'sse') n.sse++;
        counts.set(group, n);
      }
      const sorted = [...counts].sort(
        (a, b) => b[1].count - a[1].count || String(a[0]).localeCompare(String(b[0])),
      );
      if (json) {
        out(
          JSON.stringify(
            sorted.map(([value, n]) => ({ [key]: value, count: n.count, sse: n.sse })),
            null,
            2,
          ),
        );
        return;
      }
      // Grouped by transport, the SSE column would repeat the sse row.
      const sseColumn = key !== 'transport';
      out(
        table(
          [key.toUpperCase(), 'COUNT', ...(sseColumn ? ['SSE'] : [])],
          sorted.map(([value, n]) => [value ?? '(none)', n.count, ...(sseColumn ? [n.sse] : [])]),
        ),
      );
      const sse = body.filter((c) => c.transport === 'sse').length;
      out(
        `total: ${body.length}${sse > 0 ? ` (${sse} on the HTTP streaming fallback: their WebSocket upgrade does not get through, RB-003 Step 4)` : ''}`,
      );
    }),
  );
}
