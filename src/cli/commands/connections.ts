/** `archon-ws connections`: how connections spread over servers, client versions or users. */
import type { Command } from 'commander';
import { admin, CliError, Exit, resolveTarget } from '../api.js';
import { action, targetOptions, type TargetOptions } from '../common.js';
import { out, table, withProgress } from '../format.js';

const GROUPS = ['server', 'client_version', 'user', 'addr'] as const;
type GroupBy = (typeof GROUPS)[number];
/** The field of a connection each grouping reads. */
const FIELD: Record<GroupBy, 'server' | 'client_version' | 'user_id' | 'remote_addr'> = {
  server: 'server',
  client_version: 'client_version',
  user: 'user_id',
  addr: 'remote_addr',
};

interface Options extends TargetOptions {
  groupBy: string;
}

export function registerConnections(program: Command): void {
  targetOptions(
    program
      .command('connections')
      .description(
        'connection counts per server, client version, user or client address (RB-003 Step 1)',
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
      const counts = new Map<string | null, number>();
      for (const c of body) {
        const group = c[FIELD[key]];
        counts.set(group, (counts.get(group) ?? 0) + 1);
      }
      const sorted = [...counts].sort(
        (a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0])),
      );
      if (json) {
        out(
          JSON.stringify(
            sorted.map(([value, count]) => ({ [key]: value, count })),
            null,
            2,
          ),
        );
        return;
      }
      out(
        table(
          [key.toUpperCase(), 'COUNT'],
          sorted.map(([value, count]) => [value ?? '(none)', count]),
        ),
      );
      out(`total: ${body.length}`);
    }),
  );
}
