/**
 * Debian's Chromium driven by playwright-core (no browser download): headless, no sandbox (CI
 * runs as root), no background networking (the machine has no internet). Every page records
 * its console errors and uncaught exceptions, so a test can assert the page ran clean.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll } from 'vitest';
import { ROOT } from './processes.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export interface TrackedPage {
  readonly page: Page;
  /** Console errors, CSP violations and uncaught exceptions, in order. */
  readonly problems: string[];
}

export interface BrowserHandle {
  /** A new page in its own context (own storage), at the given viewport. */
  open(viewport?: { width: number; height: number }): Promise<TrackedPage>;
}

/** One Chromium for the test file, closed after it. */
export function useBrowser(): BrowserHandle {
  let browser: Browser | null = null;
  const contexts: BrowserContext[] = [];
  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
  });
  return {
    async open(viewport = { width: 1280, height: 800 }) {
      if (!existsSync(CHROMIUM))
        throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (.ci/run does)`);
      browser ??= await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--no-first-run',
        ],
      });
      const context = await browser.newContext({ viewport });
      contexts.push(context);
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`exception: ${e.message}`));
      return { page, problems };
    },
  };
}

/** Saves a screenshot under docs/ (the README shows them) when ARCHON_SCREENSHOTS=1. */
export async function screenshot(page: Page, name: string): Promise<void> {
  if (process.env.ARCHON_SCREENSHOTS !== '1') return;
  const dir = join(ROOT, 'docs', 'images');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, name) });
}
