/**
 * The deployment files as shipped (deploy/, .dockerignore): the swarm stack keeps a rolling
 * restart lossless (one instance at a time, the new one healthy before the old one stops, a
 * grace period longer than the drain), the image runs the gateway unprivileged with a health
 * check, and nginx accepts deploy/nginx/archon-ws.conf (`nginx -t`).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = join(import.meta.dirname, '..', '..');
const STACK = join(ROOT, 'deploy', 'docker', 'stack.yml');
const DOCKERFILE = join(ROOT, 'deploy', 'docker', 'Dockerfile');
const NGINX_CONF = join(ROOT, 'deploy', 'nginx', 'archon-ws.conf');

/** The default of WEBSOCKET_SHUTDOWN_TIMEOUT (src/server/config.ts), in seconds. */
const DEFAULT_SHUTDOWN_TIMEOUT = 30;

interface StackService {
  image?: string;
  environment?: Record<string, string | number> | string[];
  healthcheck?: { test?: string | string[] };
  stop_grace_period?: string;
  command?: string | string[];
  configs?: ({ source: string; target?: string } | string)[];
  secrets?: ({ source: string } | string)[];
  deploy?: {
    replicas?: number;
    update_config?: { parallelism?: number; order?: string; failure_action?: string };
  };
}

interface Stack {
  services: Record<string, StackService | undefined>;
  configs?: Record<string, { file?: string }>;
  secrets?: Record<string, unknown>;
}

/** A Compose duration ("45s", "1m30s", "1h") in seconds. */
function durationSeconds(text: string): number {
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(h|ms|us|m|s)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text)
    throw new Error(`not a duration: ${JSON.stringify(text)}`);
  return parts.reduce((sum, p) => sum + Number(p[1]) * (units[p[2] as string] ?? NaN), 0);
}

/** A service's environment as a map, whichever of the two Compose forms it uses. */
function environment(service: StackService): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env))
    return Object.fromEntries(
      env.map((entry) => {
        const at = entry.indexOf('=');
        return at < 0 ? [entry, ''] : [entry.slice(0, at), entry.slice(at + 1)];
      }),
    );
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));
}

function words(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value.join(' ') : (value ?? '');
}

/** Dockerfile instructions with continuation lines joined and comments dropped. */
function instructions(text: string): { keyword: string; args: string }[] {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('#'))
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

describe('deploy/docker/stack.yml', () => {
  const stack = parse(readFileSync(STACK, 'utf8')) as Stack;
  const api = stack.services.api;

  it('defines the gateway as service `api`, so RB-003 can address it as archon_api', () => {
    expect(api).toBeDefined();
    expect(api?.image).toMatch(/archon-ws/);
  });

  it('runs at least two replicas, so a restart always leaves an instance to reconnect to', () => {
    expect(api?.deploy?.replicas).toBeGreaterThanOrEqual(2);
  });

  it('restarts one instance at a time, starting the new one before stopping the old', () => {
    expect(api?.deploy?.update_config?.parallelism).toBe(1);
    expect(api?.deploy?.update_config?.order).toBe('start-first');
    expect(api?.deploy?.update_config?.failure_action).toBe('rollback');
  });

  it('gives a stopping instance longer than WEBSOCKET_SHUTDOWN_TIMEOUT before SIGKILL', () => {
    const env = environment(api ?? {});
    const shutdown = Number(env.WEBSOCKET_SHUTDOWN_TIMEOUT ?? DEFAULT_SHUTDOWN_TIMEOUT);
    expect(Number.isFinite(shutdown)).toBe(true);
    expect(api?.stop_grace_period).toBeDefined();
    expect(durationSeconds(api?.stop_grace_period ?? '')).toBeGreaterThan(shutdown);
  });

  it('health-checks each instance on /api/health', () => {
    expect(words(api?.healthcheck?.test)).toContain('/api/health');
  });

  it('runs the instances in cluster mode against the stack’s Redis', () => {
    expect(environment(api ?? {}).ARCHON_REDIS_URL).toBe('redis://redis:6379');
    const redis = stack.services.redis;
    expect(redis).toBeDefined();
    expect(redis?.image).toMatch(/^redis:7/);
    // Without persistence a Redis restart changes every epoch: clients get recovered:false.
    expect(words(redis?.command)).toMatch(/--appendonly yes/);
  });

  it('keeps the tokens out of the stack file: every secret it uses is declared', () => {
    const env = environment(api ?? {});
    for (const name of ['ARCHON_JWT_SECRET', 'ARCHON_ADMIN_TOKENS', 'ARCHON_PUBLISH_TOKENS'])
      expect(env[name], name).toBeUndefined();
    const used = (api?.secrets ?? []).map((s) => (typeof s === 'string' ? s : s.source));
    expect(used.length).toBe(3);
    for (const name of used) expect(stack.secrets?.[name], name).toBeDefined();
  });

  it('fronts the instances with nginx configured from deploy/nginx/archon-ws.conf', () => {
    const nginx = stack.services.nginx;
    expect(nginx).toBeDefined();
    const sources = (nginx?.configs ?? []).map((c) => (typeof c === 'string' ? c : c.source));
    const files = sources.map((s) => stack.configs?.[s]?.file);
    expect(files.map((f) => f && resolve(dirname(STACK), f))).toContain(NGINX_CONF);
    // The example instances are replaced by every task of the api service.
    expect(words(nginx?.command)).toMatch(/server tasks\.api:8000 resolve/);
  });

  it('parses Compose durations', () => {
    expect(durationSeconds('45s')).toBe(45);
    expect(durationSeconds('1m30s')).toBe(90);
    expect(() => durationSeconds('45')).toThrow();
  });
});

describe('deploy/docker/Dockerfile', () => {
  const all = instructions(readFileSync(DOCKERFILE, 'utf8'));
  const lastFrom = all.map((i) => i.keyword).lastIndexOf('FROM');
  const runtime = all.slice(lastFrom);

  it('builds and runs on node:24-slim', () => {
    const froms = all.filter((i) => i.keyword === 'FROM').map((i) => i.args.split(' ')[0]);
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const image of froms) expect(image).toBe('node:24-slim');
  });

  it('builds with npm ci, npm run build and prunes dev dependencies', () => {
    const runs = all.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    expect(runs.some((r) => r.includes('npm ci'))).toBe(true);
    expect(runs.some((r) => r.includes('npm run build'))).toBe(true);
    expect(runs.some((r) => r.includes('npm prune --omit=dev'))).toBe(true);
  });

  it('copies every input of `npm run build` into the build stage, and dist/ into the runtime', () => {
    const copies = all.filter((i) => i.keyword === 'COPY').map((i) => i.args);
    const build = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: { build: string };
    };
    // tsc -p tsconfig.build.json (src/) and vite build --config web/vite.config.ts (web/).
    expect(build.scripts.build).toContain('web/vite.config.ts');
    for (const input of ['src', 'web', 'bin', 'tsconfig.json', 'tsconfig.build.json'])
      expect(
        copies.some((c) => c.split(' ').includes(input)),
        input,
      ).toBe(true);
    expect(runtime.some((i) => i.keyword === 'COPY' && i.args.includes('/app/dist ./dist'))).toBe(
      true,
    );
  });

  it('runs as a user that is not root', () => {
    const users = runtime.filter((i) => i.keyword === 'USER').map((i) => i.args.split(':')[0]);
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0']).not.toContain(users.at(-1));
  });

  it('health-checks /api/health without curl, stops with SIGTERM and runs `serve`', () => {
    const health = runtime.find((i) => i.keyword === 'HEALTHCHECK');
    expect(health?.args).toContain('/api/health');
    expect(health?.args).not.toMatch(/\bcurl\b/);
    expect(runtime.find((i) => i.keyword === 'STOPSIGNAL')?.args).toBe('SIGTERM');
    expect(runtime.find((i) => i.keyword === 'EXPOSE')?.args).toBe('8000');
    const cmd = runtime.find((i) => i.keyword === 'CMD');
    expect(JSON.parse(cmd?.args ?? 'null')).toEqual(['node', 'bin/archon-ws.js', 'serve']);
  });

  it("caps V8's young generation, the memory setting docs/performance.md measured", () => {
    const env = runtime.filter((i) => i.keyword === 'ENV').map((i) => i.args);
    expect(env).toContain('NODE_OPTIONS=--max-semi-space-size=16');
    expect(readFileSync(join(ROOT, 'docs', 'performance.md'), 'utf8')).toContain(
      '--max-semi-space-size=16',
    );
  });

  it('keeps dependencies, build output, history and results out of the build context', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    for (const entry of ['node_modules', 'dist', '.git', 'bench/results', 'test-results'])
      expect(ignored, entry).toContain(entry);
  });
});

describe('deploy/nginx/archon-ws.conf', () => {
  const dir = mkdtempSync(join(tmpdir(), 'archon-nginx-t-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('passes `nginx -t` included as shipped in an http {} block', () => {
    const nginx = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
    expect(
      nginx.error,
      'nginx is not installed (apt-get install nginx; .ci/run installs it)',
    ).toBeUndefined();
    chmodSync(dir, 0o755);
    const conf = join(dir, 'nginx.conf');
    writeFileSync(
      conf,
      [
        `pid ${join(dir, 'nginx.pid')};`,
        `error_log ${join(dir, 'error.log')};`,
        'events {}',
        'http {',
        `  access_log ${join(dir, 'access.log')};`,
        `  include ${NGINX_CONF};`,
        '}',
        '',
      ].join('\n'),
    );
    // -e: the error log nginx opens before it has read the configuration (the compiled-in
    // default is under /var/log/nginx).
    const test = spawnSync('nginx', ['-t', '-p', dir, '-c', conf, '-e', join(dir, 'error.log')], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(test.status, test.stderr).toBe(0);
    expect(test.stderr).toContain('test is successful');
    expect(existsSync(NGINX_CONF)).toBe(true);
  });
});
