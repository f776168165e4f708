/**
 * What ARCHON_REDIS_URL names (docs/configuration.md, docs/cluster.md): one Redis primary
 * (`redis://`, `rediss://`, as ioredis reads them), or a Redis Cluster given by some of its nodes
 * (`redis+cluster://host1:port1,host2:port2/`, `rediss+cluster://` for TLS). Pure: the config
 * validates with it and never loads ioredis.
 */

export interface RedisNodeAddress {
  readonly host: string;
  readonly port: number;
}

export type RedisTarget =
  | { readonly kind: 'single'; readonly url: string }
  | {
      readonly kind: 'cluster';
      /** Nodes to learn the cluster's layout from; any one that answers is enough. */
      readonly seeds: readonly RedisNodeAddress[];
      readonly tls: boolean;
      readonly username?: string;
      readonly password?: string;
    };

/** The allowed forms, as the config error and `archon-ws serve --help` say them. */
export const REDIS_URL_FORMS =
  'a redis:// or rediss:// URL (one Redis primary), or redis+cluster://host1:port1,host2:port2/ ' +
  '(rediss+cluster:// for TLS) naming nodes of a Redis Cluster';

const SINGLE = /^rediss?:\/\//;
const CLUSTER = /^(rediss?)\+cluster:\/\/(?:([^@/?#]*)@)?([^/?#]+)\/?$/;
const NODE = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/;
const DEFAULT_PORT = 6379;

/** The target of a URL, or why it is not one (for the config error). */
export function parseRedisUrl(url: string): RedisTarget | { readonly problem: string } {
  const cluster = CLUSTER.exec(url);
  if (cluster) {
    const [, scheme, userinfo, hosts] = cluster;
    const seeds: RedisNodeAddress[] = [];
    const parts = (hosts ?? '').split(',');
    for (const [i, part] of parts.entries()) {
      const node = NODE.exec(part.trim());
      const port = Number(node?.[3] ?? DEFAULT_PORT);
      // Not echoed: a password with an unencoded @ would land here.
      if (!node || !Number.isInteger(port) || port < 1 || port > 65535)
        return { problem: `node ${i + 1} of ${parts.length} is not host:port` };
      seeds.push({ host: node[1] ?? node[2] ?? '', port });
    }
    const credentials = userinfo === undefined ? {} : parseUserinfo(userinfo);
    if (credentials === null) return { problem: 'the user or password is not URL-encoded' };
    return { kind: 'cluster', seeds, tls: scheme === 'rediss', ...credentials };
  }
  if (/^rediss?\+cluster:/.test(url))
    return { problem: 'a cluster URL is redis+cluster://host1:port1,host2:port2/' };
  if (SINGLE.test(url)) return { kind: 'single', url };
  return { problem: 'not a redis://, rediss://, redis+cluster:// or rediss+cluster:// URL' };
}

function parseUserinfo(userinfo: string): { username?: string; password?: string } | null {
  const colon = userinfo.indexOf(':');
  try {
    const user = decodeURIComponent(colon === -1 ? userinfo : userinfo.slice(0, colon));
    const password = colon === -1 ? undefined : decodeURIComponent(userinfo.slice(colon + 1));
    return {
      ...(user !== '' && { username: user }),
      ...(password !== undefined && password !== '' && { password }),
    };
  } catch {
    return null;
  }
}

/**
 * The URL as it may be shown (errors, logs): a password is replaced by `***`, and a userinfo
 * without a colon (which some clients read as a password) too. Works on any text, valid or not.
 */
export function redactRedisUrl(url: string): string {
  return url.replace(
    /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^@/?#]*)@/,
    (_all, scheme: string, info: string) => {
      const colon = info.indexOf(':');
      return `${scheme}${colon === -1 ? '***' : `${info.slice(0, colon)}:***`}@`;
    },
  );
}

/** The target without credentials, for logs and errors: where the backplane connects. */
export function describeRedisTarget(target: RedisTarget): string {
  if (target.kind === 'cluster') {
    const nodes = target.seeds.map(
      (s) => (s.host.includes(':') ? `[${s.host}]` : s.host) + `:${s.port}`,
    );
    return `${target.tls ? 'rediss' : 'redis'}+cluster://${nodes.join(',')}/`;
  }
  try {
    const parsed = new URL(target.url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return '(invalid Redis URL)';
  }
}
