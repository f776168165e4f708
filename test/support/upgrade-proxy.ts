/**
 * An HTTP proxy on 127.0.0.1, port 0, in front of a gateway, like the corporate proxies the
 * streaming fallback is for (docs/client.md#when-websocket-cannot-get-through): plain HTTP
 * requests pass, streamed as they come (so server-sent events flow), while WebSocket upgrades
 * are refused with 403 until the test lets them through.
 */
import { createServer, request, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach } from 'vitest';

export interface UpgradeProxy {
  readonly port: number;
  readonly http: string;
  readonly ws: string;
  /** Let WebSocket upgrades through (true) or refuse them (false, the start). */
  passUpgrades: boolean;
  /** Upgrade requests seen, passed or refused. */
  readonly upgrades: number;
  /** Plain requests seen, by `METHOD path` without the query. */
  readonly requests: readonly string[];
  close(): Promise<void>;
}

/** A proxy for the test, closed after it. */
export function useUpgradeProxy(): (targetPort: number) => Promise<UpgradeProxy> {
  const proxies: UpgradeProxy[] = [];
  afterEach(async () => {
    for (const p of proxies.splice(0)) await p.close();
  });
  return async (targetPort) => {
    const proxy = await startUpgradeProxy(targetPort);
    proxies.push(proxy);
    return proxy;
  };
}

export async function startUpgradeProxy(targetPort: number): Promise<UpgradeProxy> {
  const sockets = new Set<Duplex>();
  const track = (s: Duplex) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  };
  let upgrades = 0;
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method ?? ''} ${(req.url ?? '').split('?')[0] ?? ''}`);
    const upstream = request(
      {
        host: '127.0.0.1',
        port: targetPort,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        res.flushHeaders();
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    // The client went away (it aborted the stream): so does the request to the gateway.
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  server.on('connection', track);
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    upgrades++;
    track(socket);
    if (!proxy.passUpgrades) {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    const up: Socket = connect(targetPort, '127.0.0.1', () => {
      const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2)
        lines.push(`${req.rawHeaders[i] ?? ''}: ${req.rawHeaders[i + 1] ?? ''}`);
      up.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    track(up);
    up.on('close', () => socket.destroy());
    socket.on('close', () => up.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const proxy: UpgradeProxy = {
    port,
    http: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}`,
    passUpgrades: false,
    get upgrades() {
      return upgrades;
    },
    requests,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  return proxy;
}
