/**
 * Options and limits the operator commands share (src/cli/common.ts, src/cli/api.ts,
 * src/cli/commands/doctor.ts): durations within a sane range, admin requests bounded by
 * the command's --timeout, --report checked before any evidence is gathered, and the URLs
 * doctor probes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { adminAnswer, adminRequest } from '../../src/cli/api.js';
import { checkReportPath, probeUrlOption } from '../../src/cli/commands/doctor.js';
import { durationOption } from '../../src/cli/common.js';

const usage = (message: RegExp): unknown =>
  expect.objectContaining({ exitCode: 2, message: expect.stringMatching(message) as string });

describe('durations', () => {
  it('reads ms, s, m, h and plain seconds', () => {
    expect(durationOption('--timeout', '250ms')).toBe(250);
    expect(durationOption('--timeout', '10')).toBe(10_000);
    expect(durationOption('--timeout', '1.5s')).toBe(1500);
    expect(durationOption('--timeout', '2m')).toBe(120_000);
    expect(durationOption('--timeout', '1h')).toBe(3_600_000);
  });

  it('refuses values outside 1 ms to 1 h, naming the flag, the value and the range', () => {
    expect(() => durationOption('--timeout', '0.0001ms')).toThrow(
      usage(/^--timeout must be from 1ms to 1h \(got "0\.0001ms"\)$/),
    );
    expect(() => durationOption('--timeout', '1000h')).toThrow(
      usage(/^--timeout must be from 1ms to 1h \(got "1000h"\)$/),
    );
    expect(() => durationOption('--timeout', '0')).toThrow(usage(/from 1ms to 1h/));
    expect(() => durationOption('--timeout', 'soon')).toThrow(usage(/a duration like 30s/));
  });

  it('takes other bounds where a flag needs them', () => {
    expect(durationOption('--timeout', '2h', { maxMs: 86_400_000 })).toBe(7_200_000);
    expect(() => durationOption('--timeout', '25h', { maxMs: 86_400_000 })).toThrow(
      usage(/^--timeout must be from 1ms to 24h/),
    );
  });
});

describe('admin requests', () => {
  let server: Server | undefined;
  afterAll(() => server?.close());

  it("give up after the command's --timeout, and say so", async () => {
    server = createServer(() => {
      // never answers
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const began = Date.now();
    await expect(
      adminRequest({ url, token: 't', timeoutMs: 300 }, 'GET', '/websocket/status'),
    ).rejects.toMatchObject({
      exitCode: 3,
      message: `cannot reach ${url}: no answer within 300 ms`,
    });
    expect(Date.now() - began).toBeLessThan(3000);
    server.closeAllConnections();
  });

  it('return the Date header and the arrival time with the answer', async () => {
    const s = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.setHeader('date', 'Fri, 27 Nov 2026 10:45:30 GMT');
      res.end('[]');
    });
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
      const before = Date.now();
      const a = await adminAnswer({ url, token: 't' }, 'GET', '/websocket/connections');
      expect(a.body).toEqual([]);
      expect(a.date).toBe('Fri, 27 Nov 2026 10:45:30 GMT');
      expect(a.received_at).toBeGreaterThanOrEqual(before);
    } finally {
      s.close();
    }
  });
});

describe('doctor --report', () => {
  const dir = mkdtempSync(join(tmpdir(), 'archon-report-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('accepts a new file in a directory that exists', () => {
    expect(() => checkReportPath(join(dir, 'new.md'), false)).not.toThrow();
  });

  it('refuses to overwrite a file unless --force', () => {
    const file = join(dir, 'incident.md');
    writeFileSync(file, 'earlier incident');
    expect(() => checkReportPath(file, false)).toThrow(
      usage(/already exists: pass --force to overwrite it/),
    );
    expect(() => checkReportPath(file, true)).not.toThrow();
  });

  it('refuses a directory that does not exist, or a directory as the file', () => {
    expect(() => checkReportPath(join(dir, 'no', 'such', 'x.md'), false)).toThrow(
      usage(/^cannot write --report .*x\.md: directory .*such does not exist$/),
    );
    expect(() => checkReportPath(dir, true)).toThrow(usage(/it is a directory$/));
  });
});

describe('doctor --lb and --direct', () => {
  it('take http(s) and ws(s) URLs alike', () => {
    expect(probeUrlOption('--lb', 'ws://lb.example:8080/')).toBe('ws://lb.example:8080');
    expect(probeUrlOption('--lb', 'https://lb.example')).toBe('https://lb.example');
    expect(() => probeUrlOption('--direct', 'ftp://x')).toThrow(usage(/^--direct "ftp:\/\/x"/));
    expect(() => probeUrlOption('--lb', 'not a url')).toThrow(usage(/^--lb /));
  });
});
