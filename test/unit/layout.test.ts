/** Which way imports go between the modules of src/ (README.md, Development: layout). */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** Relative imports of a file, resolved to paths under src/. */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/from\s+'(\.[^']+)'/g)].map((m) =>
    relative(join(root, 'src'), resolve(dirname(file), m[1] as string)),
  );
}

describe('module layout', () => {
  it('keeps src/protocol free of imports from the rest of the project', () => {
    for (const file of files(join(root, 'src/protocol'))) {
      for (const target of imports(file)) expect(target, file).toMatch(/^protocol\//);
    }
  });

  it('lets the hub know the Backplane interface only, never an implementation', () => {
    const hub = imports(join(root, 'src/server/hub.ts'));
    expect(hub.filter((t) => t.startsWith('server/backplane/'))).toEqual([
      'server/backplane/backplane.js',
    ]);
  });

  it('keeps HTTP routes from being imported by the hub or the connection', () => {
    for (const name of ['hub.ts', 'connection.ts', 'admin.ts']) {
      for (const target of imports(join(root, 'src/server', name)))
        expect(target).not.toMatch(/^server\/http\//);
    }
  });

  it('keeps src/client on src/protocol only', () => {
    const dir = join(root, 'src/client');
    const clientFiles = existsSync(dir) ? files(dir) : [];
    for (const file of clientFiles) {
      for (const target of imports(file)) expect(target, file).toMatch(/^(client|protocol)\//);
    }
  });

  it('keeps web/ on the SDK (src/client) and its own files', () => {
    const web = join(root, 'web', 'src');
    const webFiles = readdirSync(web, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && /\.tsx?$/.test(e.name))
      .map((e) => join(e.parentPath, e.name));
    expect(webFiles.length).toBeGreaterThan(0);
    for (const file of webFiles) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/from\s+'([^']+)'/g)) {
        const spec = m[1] as string;
        if (!spec.startsWith('.')) {
          // Packages: the UI library and the chart library only.
          expect(spec, file).toMatch(/^(preact|preact\/hooks|uplot|uplot\/.*)$/);
          continue;
        }
        const target = relative(root, resolve(dirname(file), spec));
        // The SDK's two entries: the client, and the admin schemas for the console.
        expect(target, file).toMatch(/^(web\/|src\/client\/(index|admin)\.js$)/);
      }
    }
  });
});
