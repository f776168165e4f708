/**
 * Builds dist/ (server, CLI and web pages) once, before any test file runs: the process,
 * CLI and browser tests run the built code, and test files building it in parallel could
 * remove dist/web under each other's feet.
 */
import { ensureBuilt } from './processes.js';

export default function setup(): void {
  ensureBuilt();
}
