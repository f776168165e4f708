/** `archon-ws test-connect`: RB-003's `wscat -c …/api/v1/ws/test` with timings. */
import type { Command } from 'commander';
import WebSocket from 'ws';
import { CliError, Exit, resolveUrl } from '../api.js';
import { action, durationOption } from '../common.js';
import { ms, out, pairs, round, withProgress } from '../format.js';
import { messageText, parseWelcome, testEndpointUrl, type Welcome } from '../lb-probe.js';

interface Options {
  url?: string;
  json?: boolean;
  timeout: string;
}

export interface ConnectResult {
  url: string;
  server: string;
  client_id: string | null;
  handshake_ms: number;
  echo_round_trip_ms: number;
}

/** ws(s):// URL of the test endpoint: a bare host gets /api/v1/ws/test appended. */
export function testUrl(raw: string): string {
  const url = testEndpointUrl(raw);
  if (url === null)
    throw new CliError(`invalid URL ${JSON.stringify(raw)}: expected http(s) or ws(s)`, Exit.usage);
  return url.toString();
}

export function testConnect(url: string, timeoutMs: number): Promise<ConnectResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let opened = 0;
    let handshake = 0;
    let welcome: Welcome | null = null;
    const probe = `archon-ws test-connect ${Date.now()}`;
    let echoSent = 0;
    const ws = new WebSocket(url, { handshakeTimeout: timeoutMs });
    const fail = (err: CliError) => {
      clearTimeout(timer);
      ws.removeAllListeners();
      ws.on('error', () => {});
      ws.terminate();
      reject(err);
    };
    const timer = setTimeout(
      () =>
        fail(
          new CliError(
            `${url}: ${opened ? 'no welcome/echo' : 'no handshake'} within ${timeoutMs / 1000} s`,
            opened ? Exit.badAnswer : Exit.unreachable,
          ),
        ),
      timeoutMs,
    );
    ws.on('unexpected-response', (_req, res) => {
      fail(
        new CliError(
          `${url}: handshake refused with HTTP ${res.statusCode}${res.statusCode === 404 ? ' (wrong path?)' : ''}`,
          Exit.badAnswer,
        ),
      );
    });
    ws.on('error', (err: Error & { code?: string }) => {
      fail(new CliError(`cannot reach ${url}: ${err.code ?? err.message}`, Exit.unreachable));
    });
    ws.on('open', () => {
      opened = performance.now();
      handshake = opened - started;
    });
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? '' : messageText(data);
      if (welcome === null) {
        const w = parseWelcome(text);
        if ('error' in w) {
          fail(new CliError(`${url}: ${w.error}`, Exit.badAnswer));
          return;
        }
        welcome = w;
        echoSent = performance.now();
        ws.send(probe);
        return;
      }
      if (text !== probe) {
        fail(new CliError(`${url}: echo did not match: ${text.slice(0, 80)}`, Exit.badAnswer));
        return;
      }
      const rtt = performance.now() - echoSent;
      clearTimeout(timer);
      ws.close(1000, 'test done');
      resolve({
        url,
        server: welcome.server,
        client_id: welcome.client_id,
        handshake_ms: round(handshake),
        echo_round_trip_ms: round(rtt),
      });
    });
    ws.on('close', (code, reason) => {
      if (welcome === null || echoSent === 0)
        fail(
          new CliError(
            `${url}: closed early with ${code} ${reason.toString()}`.trim(),
            Exit.badAnswer,
          ),
        );
    });
  });
}

export function registerTestConnect(program: Command): void {
  program
    .command('test-connect')
    .description('connect to /api/v1/ws/test: handshake time, echo round trip, answering server')
    .argument('[url]', 'gateway or test endpoint URL (default: $ARCHON_URL)')
    .option('--url <url>', 'gateway base URL (default: $ARCHON_URL)')
    .option('--timeout <duration>', 'give up after this long', '10s')
    .option('--json', 'print JSON for scripts')
    .action(
      action(async (arg: string | undefined, options: Options) => {
        const timeoutMs = durationOption('--timeout', options.timeout);
        const raw = arg ?? resolveUrl(options);
        const url = testUrl(raw);
        const json = options.json === true;
        const r = await withProgress(`connecting to ${url}`, json, testConnect(url, timeoutMs));
        if (json) {
          out(JSON.stringify(r, null, 2));
          return;
        }
        out(
          pairs([
            ['endpoint', r.url],
            ['server', r.server],
            ['handshake', ms(r.handshake_ms)],
            ['echo round trip', ms(r.echo_round_trip_ms)],
          ]),
        );
      }),
    );
}
