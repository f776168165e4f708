/** A load balancer probe (src/cli/lb-probe.ts) that went through every step, for unit tests. */
import type { Probe } from '../../src/cli/lb-probe.js';

export function goodProbe(
  server = 'api-1',
  url = 'ws://lb.example/api/v1/ws/test',
  edit: (p: Probe) => void = () => {},
): Probe {
  const p: Probe = {
    url,
    requested_protocol: 'archon.v1',
    handshake: {
      status: 101,
      upgrade: 'websocket',
      connection: 'upgrade',
      protocol: 'archon.v1',
      ms: 4.2,
      body: null,
      error: null,
      unreachable: false,
    },
    welcome: {
      type: 'welcome',
      server,
      client_id: 't_0a1b2c3d4e5f',
      closes_after: 60,
      ping_interval: 30,
      ping_timeout: 10,
    },
    ping: { ms: 0.8 },
    echo: { ms: 0.9 },
    idle: null,
  };
  edit(p);
  return p;
}
