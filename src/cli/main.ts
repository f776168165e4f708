/** The `archon-ws` command. Only `serve` starts a server in-process; the other commands talk
 * to a running gateway over HTTP/WebSocket like any operator would (docs/cli.md). */
import { CommanderError } from 'commander';
import { Exit } from './api.js';
import { buildProgram } from './program.js';

// A reader that stops early (`archon-ws status | head -3`) closes the pipe under us: the
// output was not wanted any more, which is not a failure of the command.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(process.exitCode ?? Exit.ok);
});

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof CommanderError)) throw err;
  // Commander already printed the message; help and --version are not errors.
  process.exitCode = err.exitCode === 0 ? Exit.ok : Exit.usage;
}
