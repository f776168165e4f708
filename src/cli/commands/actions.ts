/** `archon-ws cleanup`, `flush` and `broadcast`: RB-003 Fix A, Fix B and Step 5. */
import type { Command } from 'commander';
import { admin, CliError, Exit, resolveTarget } from '../api.js';
import { action, targetOptions, type TargetOptions } from '../common.js';
import { out, table, withProgress } from '../format.js';

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
      const r = await withProgress(
        `cleaning up on ${target.url}`,
        json,
        admin(target, 'POST', '/websocket/cleanup'),
      );
      if (json) {
        out(JSON.stringify(r, null, 2));
        return;
      }
      out(
        r.removed === 0
          ? 'cleanup: nothing to clean (0 connections closed)'
          : `cleanup: closed ${r.removed} dead or stuck connection${r.removed === 1 ? '' : 's'}`,
      );
      printPerServer('CLOSED', r.servers, r.missing);
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
      const r = await withProgress(
        `flushing queues on ${target.url}`,
        json,
        admin(target, 'POST', '/websocket/queue/flush'),
      );
      if (json) {
        out(JSON.stringify(r, null, 2));
        return;
      }
      out(
        `flush: dropped ${r.flushed_messages} queued message${r.flushed_messages === 1 ? '' : 's'} from ${r.clients} client${r.clients === 1 ? '' : 's'} (they resync from history)`,
      );
      printPerServer('DROPPED', r.servers, r.missing);
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
      const r = await withProgress(
        `broadcasting on ${target.url}`,
        json,
        admin(target, 'POST', '/broadcast', { body: { type: 'system', message: text } }),
      );
      if (json) {
        out(JSON.stringify(r, null, 2));
        return;
      }
      out(
        `broadcast: sent to ${r.delivered} authenticated connection${r.delivered === 1 ? '' : 's'} on ${r.servers} server${r.servers === 1 ? '' : 's'}`,
      );
      if (r.missing.length > 0) out(`no answer from: ${r.missing.join(', ')}`);
    }),
  );
}
