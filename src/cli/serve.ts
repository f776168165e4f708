/**
 * `archon-ws serve`: runs the gateway from environment and flags; `--demo` adds the feed. With
 * ARCHON_WORKERS > 1 this process becomes the node's primary and each worker it forks runs
 * this same command as one gateway (docs/cluster.md#workers-every-core-of-a-node).
 */
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { SignJWT } from 'jose';
import { startDemoFeed, DEMO_ACCOUNTS } from '../demo/feed.js';
import {
  ConfigError,
  describeVariable,
  ENV_NAMES,
  flagFor,
  loadConfig,
  type Config,
} from '../server/config.js';
import type { WorkerIdentity } from '../server/gateway.js';
import { Primary, WORKER_SLOT_VARIABLE } from '../server/workers.js';

interface ServeOptions {
  demo?: boolean;
  [flag: string]: string | boolean | undefined;
}

export function registerServe(program: Command): void {
  const serve = program
    .command('serve')
    .description('run the gateway (configuration from environment variables or these flags)')
    .option('--demo', 'add the embedded demo trading feed and print demo tokens');
  for (const name of ENV_NAMES) {
    const { default: fallback, allowed } = describeVariable(name);
    serve.option(
      `${flagFor(name)} <value>`,
      `${name}: ${allowed}${fallback ? ` (default ${fallback})` : ''}`,
    );
  }
  serve.action(async (options: ServeOptions) => {
    const env: Record<string, string | undefined> = { ...process.env };
    for (const name of ENV_NAMES) {
      const value = options[camel(flagFor(name))];
      if (typeof value === 'string') env[name] = value;
    }
    const demo = options.demo === true ? prepareDemo(env) : null;
    let config;
    try {
      config = loadConfig(env);
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`archon-ws: ${err.message}\n`);
        process.exit(2);
      }
      throw err;
    }
    if (
      config.jwtSecret === undefined &&
      config.jwtPublicKey === undefined &&
      config.jwtJwksUrl === undefined
    ) {
      process.stderr.write(
        'archon-ws: invalid configuration:\n  no JWT verification configured: set ARCHON_JWT_SECRET, ARCHON_JWT_PUBLIC_KEY or ARCHON_JWT_JWKS_URL (or run with --demo)\n',
      );
      process.exit(2);
    }
    if (cluster.isPrimary && config.workers > 1) {
      // The demo's generated secrets go to every worker through `env`.
      new Primary(config, env).start();
      return;
    }
    await runGateway(config, env, demo, workerIdentity(config, env));
  });
}

/** In a worker of a node: its slot and how its /metrics reaches the primary. */
async function workerIdentity(
  config: Config,
  env: Record<string, string | undefined>,
): Promise<WorkerIdentity | undefined> {
  if (!cluster.isWorker) return undefined;
  const { scrapeNode } = await import('../server/node-metrics.js');
  const name = env[WORKER_SLOT_VARIABLE] ?? `w${cluster.worker?.id ?? 0}`;
  return { node: config.serverId, name, scrape: scrapeNode };
}

async function runGateway(
  nodeConfig: Config,
  env: Record<string, string | undefined>,
  demo: DemoSecrets | null,
  identity: Promise<WorkerIdentity | undefined>,
): Promise<void> {
  // Loaded here, not at the top: a primary of workers never loads Fastify or the gateway.
  const { Gateway } = await import('../server/gateway.js');
  const worker = await identity;
  // A worker is an instance of its own in the cluster admin plane: `<node>:w1`.
  const config = worker
    ? Object.freeze({ ...nodeConfig, serverId: `${worker.node}:${worker.name}` })
    : nodeConfig;
  const gateway = new Gateway(config, worker ? { worker } : {});
  if (worker) {
    const { serveWorkerMetrics } = await import('../server/node-metrics.js');
    serveWorkerMetrics(gateway.metrics.registry);
  }
  process.on('unhandledRejection', (err) => gateway.log.error({ err }, 'Unhandled rejection'));
  let stopDemo = () => {};
  // Handlers go in before listening: a SIGTERM right after start must drain, not kill.
  let signals = 0;
  const stop = (signal: string) => {
    if (++signals > 1) process.exit(1); // a second Ctrl-C means now
    gateway.log.info({ signal }, 'Signal received');
    stopDemo();
    gateway.shutdown().then(
      () => process.exit(0),
      (err: unknown) => {
        gateway.log.error({ err }, 'Shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  // Ctrl-C reaches every process of the terminal's group: a worker leaves it to the primary,
  // which drains the workers one at a time.
  process.on('SIGINT', () => (worker ? undefined : stop('SIGINT')));
  let port: number;
  try {
    port = await gateway.start();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`archon-ws: cannot start: ${message}\n`);
    process.exit(1);
  }
  // One demo feed per node, not one per worker.
  if (demo && signals === 0 && (worker === undefined || worker.name === 'w1')) {
    const feed = startDemoFeed({
      publish: (events) =>
        gateway.publish(
          events.map((e) => ({ channel: e.channel, key: e.key ?? null, data: e.data })),
        ),
      onError: (err) => gateway.log.warn({ err }, 'Demo feed publish failed'),
    });
    stopDemo = () => feed.stop();
    await printDemoBanner(port, env, demo);
  }
}

interface DemoSecrets {
  readonly generatedSecret: boolean;
}

/** Fills in what a first run needs and remembers what was generated. */
function prepareDemo(env: Record<string, string | undefined>): DemoSecrets {
  const hasKey = [env.ARCHON_JWT_SECRET, env.ARCHON_JWT_PUBLIC_KEY, env.ARCHON_JWT_JWKS_URL].some(
    (v) => v,
  );
  if (!hasKey) env.ARCHON_JWT_SECRET = randomBytes(32).toString('hex');
  if (!env.ARCHON_ADMIN_TOKENS)
    env.ARCHON_ADMIN_TOKENS = `adm_${randomBytes(18).toString('base64url')}`;
  if (!env.ARCHON_PUBLISH_TOKENS)
    env.ARCHON_PUBLISH_TOKENS = `pub_${randomBytes(18).toString('base64url')}`;
  return { generatedSecret: !hasKey };
}

async function printDemoBanner(
  port: number,
  env: Record<string, string | undefined>,
  demo: DemoSecrets,
): Promise<void> {
  const base = `http://localhost:${port}`;
  const admin = (env.ARCHON_ADMIN_TOKENS ?? '').split(',')[0] ?? '';
  const publish = (env.ARCHON_PUBLISH_TOKENS ?? '').split(',')[0] ?? '';
  let userToken = '(set ARCHON_JWT_SECRET to have a demo user token printed)';
  if (env.ARCHON_JWT_SECRET) {
    userToken = await new SignJWT({ accounts: [...DEMO_ACCOUNTS], name: 'Demo Trader' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('demo-trader')
      .setIssuedAt()
      .setExpirationTime('30d')
      .sign(new TextEncoder().encode(env.ARCHON_JWT_SECRET));
  }
  const lines = [
    '',
    `archon-ws demo is running on ${base} (accounts ${DEMO_ACCOUNTS.join(', ')})`,
    '',
    '  Open in a browser (the token after # never leaves the browser):',
    `    trader dashboard  ${env.ARCHON_JWT_SECRET ? `${base}/#token=${userToken}` : `${base}/ (sign in with a user token)`}`,
    `    operator console  ${base}/ops#token=${admin}`,
    '',
    `  export ARCHON_URL=${base}`,
    `  export ADMIN_TOKEN=${admin}`,
    `  export PUBLISH_TOKEN=${publish}`,
    `  export USER_TOKEN=${userToken}`,
    '',
    '  Operator status (RB-003 Step 1):',
    '    curl -s $ARCHON_URL/api/v1/admin/websocket/status -H "Authorization: Bearer $ADMIN_TOKEN" | jq',
    '  Live feed over WebSocket (subprotocol archon.v1, endpoint /api/v1/ws):',
    '    {"op":"hello","token":"$USER_TOKEN"}  then  {"op":"subscribe","id":1,"channel":"positions:DEMO1"}',
    '  Publish an event:',
    '    curl -s -X POST $ARCHON_URL/api/v1/publish -H "Authorization: Bearer $PUBLISH_TOKEN" \\',
    '      -H "Content-Type: application/json" -d \'{"channel":"signals","data":{"symbol":"EURUSD","action":"buy"}}\'',
    demo.generatedSecret
      ? '  (tokens are new on every start; set ARCHON_JWT_SECRET, ARCHON_ADMIN_TOKENS and ARCHON_PUBLISH_TOKENS to keep them)'
      : '',
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function camel(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}
