/** `archon-ws cleanup`, `flush` and `broadcast`: RB-003 Fix A, Fix B and Step 5. */
import type { Command } from 'commander';
import { adminRequest, CliError, Exit, expectFields, isObject, resolveTarget } from '../api.js';
import { action, targetOptions, type TargetOptions } from '../common.js';
import { out, table, withProgress } from '../format.js';

function perServer(what: string, v: unknown): Record<string, number> {
  if (!isObject(v) || !Object.values(v).every((n) => typeof n === 'number'))
    throw new CliError(`bad answer from ${what}: servers is not a map of counts`, Exit.badAnswer);
  return v as Record<string, number>;
}

function missing(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((m): m is string => typeof m === 'string') : [];
}

function printPerServer(header: string, servers: Record<string, number>, gone: string[]): void {
  const rows = Object.entries(servers).sort((a, b) => a[0].localeCompare(b[0]));
  if (rows.length > 0) out(table(['SERVER', header], rows));
  if (gone.length > 0) out(`no answer from: ${gone.join(', ')}`);
}

export function registerCleanup(program: Command): void {
  targetOptions(
    program
      .command('cleanup')
      .description('RB-003 Fix A: close dead or stuck connections (clients reconnect, code 4010)'),
  ).action(
    action(async (options: TargetOptions) => {
      const target = resolveTarget(options);
      const json = options.json === true;
      const body = await withProgress(
        `cleaning up on ${target.url}`,
        json,
        adminRequest(target, 'POST', '/websocket/cleanup'),
      );
      const r = expectFields('cleanup', body, ['removed'] as const);
      const servers = perServer('cleanup', r.servers);
      const gone = missing(r.missing);
      if (json) {
        out(JSON.stringify({ removed: r.removed, servers, missing: gone }, null, 2));
        return;
      }
      out(
        r.removed === 0
          ? 'cleanup: nothing to clean (0 connections closed)'
          : `cleanup: closed ${r.removed} dead or stuck connection${r.removed === 1 ? '' : 's'}`,
      );
      printPerServer('CLOSED', servers, gone);
    }),
  );
}

export function registerFlush(program: Command): void {
  targetOptions(
    program
      .command('flush')
      .description('RB-003 Fix B: empty every client queue (clients resync from history)'),
  ).action(
    action(async (options: TargetOptions) => {
      const target = resolveTarget(options);
      const json = options.json === true;
      const body = await withProgress(
        `flushing queues on ${target.url}`,
        json,
        adminRequest(target, 'POST', '/websocket/queue/flush'),
      );
      const r = expectFields('queue/flush', body, ['flushed_messages', 'clients'] as const);
      const servers = perServer('queue/flush', r.servers);
      const gone = missing(r.missing);
      if (json) {
        out(
          JSON.stringify(
            { flushed_messages: r.flushed_messages, clients: r.clients, servers, missing: gone },
            null,
            2,
          ),
        );
        return;
      }
      out(
        `flush: dropped ${r.flushed_messages} queued message${r.flushed_messages === 1 ? '' : 's'} from ${r.clients} client${r.clients === 1 ? '' : 's'} (they resync from history)`,
      );
      printPerServer('DROPPED', servers, gone);
    }),
  );
}

export function registerBroadcast(program: Command): void {
  targetOptions(
    program
      .command('broadcast')
      .description('RB-003 Step 5: send a system notice to every authenticated connection')
      .argument('<message>', 'the notice, 1-1000 characters'),
  ).action(
    action(async (message: string, options: TargetOptions) => {
      const text = message.trim();
      if (text.length === 0 || text.length > 1000)
        throw new CliError('the message must be 1 to 1000 characters', Exit.usage);
      const target = resolveTarget(options);
      const json = options.json === true;
      const body = await withProgress(
        `broadcasting on ${target.url}`,
        json,
        adminRequest(target, 'POST', '/broadcast', { type: 'system', message: text }),
      );
      const r = expectFields('broadcast', body, ['delivered', 'servers'] as const);
      const gone = missing(r.missing);
      if (json) {
        out(JSON.stringify({ delivered: r.delivered, servers: r.servers, missing: gone }, null, 2));
        return;
      }
      out(
        `broadcast: sent to ${r.delivered} authenticated connection${r.delivered === 1 ? '' : 's'} on ${r.servers} server${r.servers === 1 ? '' : 's'}`,
      );
      if (gone.length > 0) out(`no answer from: ${gone.join(', ')}`);
    }),
  );
}
