/** The `archon-ws` command and its subcommands (docs/cli.md), built without running. */
import { Command } from 'commander';
import { registerBroadcast, registerCleanup, registerFlush } from './commands/actions.js';
import { registerAlerts } from './commands/alerts.js';
import { registerCheckLb } from './commands/check-lb.js';
import { registerConnections } from './commands/connections.js';
import { registerDoctor } from './commands/doctor.js';
import { registerStats } from './commands/stats.js';
import { registerStatus } from './commands/status.js';
import { registerTestConnect } from './commands/test-connect.js';
import { registerVerify } from './commands/verify.js';
import { registerServe } from './serve.js';

export function buildProgram(): Command {
  const program = new Command('archon-ws')
    .description('archon-ws: the real-time WebSocket gateway of the Archon trading platform')
    .showHelpAfterError();
  registerServe(program);
  // The operator commands (registered after this) report usage errors with exit code 2.
  program.exitOverride();
  registerStatus(program);
  registerConnections(program);
  registerStats(program);
  registerCleanup(program);
  registerFlush(program);
  registerBroadcast(program);
  registerAlerts(program);
  registerVerify(program);
  registerTestConnect(program);
  registerCheckLb(program);
  registerDoctor(program);
  return program;
}
