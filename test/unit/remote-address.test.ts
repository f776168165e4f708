import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { remoteAddress } from '../../src/server/upgrade.js';

const req = (peer: string, xff?: string) =>
  ({
    socket: { remoteAddress: peer },
    headers: xff === undefined ? {} : { 'x-forwarded-for': xff },
  }) as unknown as IncomingMessage;

describe('remoteAddress', () => {
  const proxies = new Set(['10.0.0.5', '10.0.0.6']);

  it('is the socket peer when no proxy is trusted', () => {
    expect(remoteAddress(req('203.0.113.9', '198.51.100.1'))).toBe('203.0.113.9');
  });

  it('reads X-Forwarded-For from a trusted proxy', () => {
    expect(remoteAddress(req('10.0.0.5', '198.51.100.1'), proxies)).toBe('198.51.100.1');
  });

  it('skips trusted hops from the right and ignores what the client claimed before them', () => {
    expect(remoteAddress(req('10.0.0.5', '1.2.3.4, 198.51.100.1, 10.0.0.6'), proxies)).toBe(
      '198.51.100.1',
    );
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', () => {
    expect(remoteAddress(req('198.51.100.7', '1.2.3.4'), proxies)).toBe('198.51.100.7');
  });
});
