/** The `archon-ws` command. Only `serve` starts a server in-process; the other commands talk
 * to a running gateway over HTTP/WebSocket like any operator would (docs/cli.md). */
import { CommanderError } from 'commander';
import { Exit } from './api.js';
import { buildProgram } from './program.js';

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof CommanderError)) throw err;
  // Commander already printed the message; help and --version are not errors.
  process.exitCode = err.exitCode === 0 ? Exit.ok : Exit.usage;
}
