/** `archon-ws stats`: per-minute rates, errors by type, disconnects by close code, the series. */
import type { Command } from 'commander';
import { admin, resolveTarget, type AdminRead, type Target } from '../api.js';
import { action, intOption, targetOptions, type TargetOptions } from '../common.js';
import { out, pairs, round, table, withProgress } from '../format.js';

export type Stats = AdminRead<'/websocket/stats'>;

/** GET /websocket/stats?minutes=N, read through its schema (exit 5 when it does not fit). */
export function fetchStats(target: Target, minutes: number): Promise<Stats> {
  return admin(target, 'GET', '/websocket/stats', { query: `?minutes=${minutes}` });
}

interface Options extends TargetOptions {
  minutes: string;
}

function listCounts(map: Record<string, number>): string {
  const entries = Object.entries(map).sort((a, b) => b[1] - a[1]);
  return entries.length === 0 ? 'none' : entries.map(([k, n]) => `${k} ${n}`).join(', ');
}

export function registerStats(program: Command): void {
  targetOptions(
    program
      .command('stats')
      .description('per-minute rates, errors by type, disconnects by code (RB-003 section 5)')
      .option('--minutes <n>', 'window in minutes, 1-60', '5'),
  ).action(
    action(async (options: Options) => {
      const minutes = intOption('--minutes', options.minutes, 1, 60);
      const target = resolveTarget(options);
      const json = options.json === true;
      const s = await withProgress(`asking ${target.url}`, json, fetchStats(target, minutes));
      if (json) {
        out(JSON.stringify(s, null, 2));
        return;
      }
      out(`last ${s.minutes} min on ${target.url}`);
      out(
        pairs([
          ['errors/min', String(round(s.errors_per_minute))],
          ['messages/min', String(round(s.messages_per_minute))],
          ['connects/min', String(round(s.connects_per_minute))],
          ['disconnects/min', String(round(s.disconnects_per_minute))],
          ['errors by type', listCounts(s.errors_by_type)],
          ['disconnects by code', listCounts(s.disconnects_by_code)],
        ]),
      );
      out('');
      out(
        table(
          ['MINUTE', 'CONNECTIONS', 'MESSAGES', 'ERRORS'],
          s.series.map((e) => [
            e.minute.replace(/:00\.000Z$/, 'Z'),
            e.connections,
            e.messages,
            e.errors,
          ]),
        ),
      );
    }),
  );
}
