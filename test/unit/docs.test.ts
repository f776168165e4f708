/**
 * The docs hold together: every relative link in README.md and docs/ points at a file that
 * exists and, with a #fragment, at a heading of it; and docs/cli.md documents every exit
 * code and subcommand the command has.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { Exit } from '../../src/cli/api.js';
import { buildProgram } from '../../src/cli/program.js';

const ROOT = resolve(import.meta.dirname, '../..');

function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? markdownFiles(join(dir, e.name))
      : e.name.endsWith('.md')
        ? [join(dir, e.name)]
        : [],
  );
}

/** The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces to
 * hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(.*)$/.exec(line);
    if (heading === null) continue;
    const base = (heading[1] ?? '')
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Relative links of a page, code spans and fenced blocks left out. */
function links(markdown: string): string[] {
  const prose = markdown.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1] ?? '')
    .filter((href) => !/^[a-z]+:/i.test(href));
}

const pages = [join(ROOT, 'README.md'), ...markdownFiles(join(ROOT, 'docs'))];

describe('links in README.md and docs/', () => {
  it.each(pages.map((p) => [p.slice(ROOT.length + 1), p]))('%s', (_name, page) => {
    const text = readFileSync(page, 'utf8');
    const broken: string[] = [];
    for (const href of links(text)) {
      const [path = '', fragment] = href.split('#');
      const target = path === '' ? page : resolve(dirname(page), decodeURI(path));
      if (!existsSync(target)) {
        broken.push(`${href}: no such file`);
        continue;
      }
      if (fragment !== undefined && target.endsWith('.md')) {
        if (!anchors(readFileSync(target, 'utf8')).has(fragment))
          broken.push(`${href}: no such heading`);
      }
    }
    expect(broken).toEqual([]);
  });
});

describe('docs/cli.md', () => {
  const doc = readFileSync(join(ROOT, 'docs/cli.md'), 'utf8');

  it.each(Object.entries(Exit))('documents exit code %s (%i)', (_name, code) => {
    expect(doc).toMatch(new RegExp(`^\\| ${code} +\\|`, 'm'));
  });

  it('lists every subcommand', () => {
    const program: Command = buildProgram();
    const names = program.commands.map((c) => c.name());
    expect(names.length).toBeGreaterThan(5);
    for (const name of names) expect(doc, name).toMatch(new RegExp(`^\\| \`${name}[ \`]`, 'm'));
  });
});
