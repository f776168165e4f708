/** The `archon-ws` command. Only `serve` starts a server in-process; the other commands talk
 * to a running gateway over HTTP/WebSocket like any operator would. */
import { Command, CommanderError } from 'commander';
import { Exit } from './api.js';
import { registerBroadcast, registerCleanup, registerFlush } from './commands/actions.js';
import { registerCheckLb } from './commands/check-lb.js';
import { registerConnections } from './commands/connections.js';
import { registerDoctor } from './commands/doctor.js';
import { registerStats } from './commands/stats.js';
import { registerStatus } from './commands/status.js';
import { registerTestConnect } from './commands/test-connect.js';
import { registerVerify } from './commands/verify.js';
import { registerServe } from './serve.js';

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
registerVerify(program);
registerTestConnect(program);
registerCheckLb(program);
registerDoctor(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof CommanderError)) throw err;
  // Commander already printed the message; help and --version are not errors.
  process.exitCode = err.exitCode === 0 ? Exit.ok : Exit.usage;
}
