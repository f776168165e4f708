/** The `archon-ws` command. Only `serve` starts a server in-process; the other commands talk
 * to a running gateway over HTTP/WebSocket like any operator would. */
import { Command } from 'commander';
import { registerServe } from './serve.js';

const program = new Command('archon-ws')
  .description('archon-ws: the real-time WebSocket gateway of the Archon trading platform')
  .showHelpAfterError();
registerServe(program);

await program.parseAsync(process.argv);
