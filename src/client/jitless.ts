/**
 * A console runs under a Content-Security-Policy without 'unsafe-eval': zod must not try to
 * compile parsers with new Function() (the attempt alone is reported as a CSP violation).
 * Imported first by admin.ts, so it takes effect before any schema is built.
 */
import { z } from 'zod';

z.config({ jitless: true });
