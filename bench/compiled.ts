/**
 * The code the benchmarks load into the processes they measure (bench/probe.ts, and the
 * reference servers bare-server.ts, socketio-server.ts with reference-http.ts), as plain
 * JavaScript. Node could run the .ts files by stripping their types, but its stripper then
 * lives in the measured process too (about 17 MB of RSS on Node 24): the servers would not be
 * measured as they run in production, nor the floor as the least a Node server holds. So they
 * are transpiled once (TypeScript's own transpileModule) into node_modules/.cache, where
 * their packages (ws, socket.io) resolve as from bench/.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const SOURCES = ['probe', 'reference-http', 'bare-server', 'socketio-server'] as const;
export type MeasuredScript = 'probe' | 'bare-server' | 'socketio-server';

let built: Promise<string> | null = null;

/** The plain JavaScript of a script loaded into a measured process: its path. */
export async function compiled(name: MeasuredScript): Promise<string> {
  built ??= build();
  return path.join(await built, `${name}.js`);
}

/**
 * Transpiles the sources into a directory named after their content, so that runs of the
 * same code share it and a changed source gets a new one.
 */
async function build(): Promise<string> {
  const sources = SOURCES.map((name) => ({
    name,
    text: readFileSync(path.join(BENCH, `${name}.ts`), 'utf8'),
  }));
  const hash = createHash('sha256');
  for (const s of sources) hash.update(s.text);
  const dir = path.join(
    path.dirname(BENCH),
    'node_modules',
    '.cache',
    'archon-bench',
    hash.digest('hex').slice(0, 16),
  );
  if (SOURCES.every((name) => existsSync(path.join(dir, `${name}.js`)))) return dir;
  const { default: ts } = await import('typescript');
  mkdirSync(dir, { recursive: true });
  // ES modules, like bench/ (node_modules/ is not under the repository's package.json).
  writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n');
  for (const s of sources) {
    const { outputText } = ts.transpileModule(s.text, {
      fileName: `${s.name}.ts`,
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2023,
        verbatimModuleSyntax: true,
        // './reference-http.ts' → './reference-http.js'
        rewriteRelativeImportExtensions: true,
      },
    });
    // Written whole, then renamed: a concurrent run never loads half a file.
    const file = path.join(dir, `${s.name}.js`);
    writeFileSync(`${file}.${process.pid}`, outputText);
    renameSync(`${file}.${process.pid}`, file);
  }
  return dir;
}
