/** `archon-ws stats`: per-minute rates, errors by type, disconnects by close code, the series. */
import type { Command } from 'commander';
import type { StatsAnswer } from '../../protocol/index.js';
import {
  adminRequest,
  CliError,
  Exit,
  expectFields,
  isObject,
  resolveTarget,
  type Target,
} from '../api.js';
import { action, intOption, targetOptions, type TargetOptions } from '../common.js';
import { out, pairs, round, table, withProgress } from '../format.js';

const RATES = [
  'minutes',
  'errors_per_minute',
  'messages_per_minute',
  'connects_per_minute',
  'disconnects_per_minute',
] as const;

function counts(what: string, v: unknown): Record<string, number> {
  if (v === undefined) return {};
  if (!isObject(v) || !Object.values(v).every((n) => typeof n === 'number'))
    throw new CliError(`bad answer from stats: ${what} is not a map of counts`, Exit.badAnswer);
  return v as Record<string, number>;
}

export async function fetchStats(target: Target, minutes: number): Promise<StatsAnswer> {
  const body = await adminRequest(target, 'GET', `/websocket/stats?minutes=${minutes}`);
  const s = expectFields('stats', body, RATES);
  if (!Array.isArray(s.series))
    throw new CliError('bad answer from stats: series missing or not an array', Exit.badAnswer);
  const series = s.series.map((e: unknown) => {
    const entry = expectFields('stats series', e, ['connections', 'messages', 'errors'] as const);
    return {
      minute: typeof entry.minute === 'string' ? entry.minute : '?',
      connections: entry.connections,
      messages: entry.messages,
      errors: entry.errors,
    };
  });
  return {
    minutes: s.minutes,
    errors_per_minute: s.errors_per_minute,
    messages_per_minute: s.messages_per_minute,
    connects_per_minute: s.connects_per_minute,
    disconnects_per_minute: s.disconnects_per_minute,
    errors_by_type: counts('errors_by_type', s.errors_by_type),
    disconnects_by_code: counts('disconnects_by_code', s.disconnects_by_code),
    series,
  };
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
