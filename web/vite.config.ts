/**
 * Builds the trader dashboard (`/`) and the operator console (`/ops`) into dist/web, which
 * the gateway serves. `npm run dev:web` serves them with hot reload, proxying the API and
 * WebSocket to a gateway on ARCHON_URL (default http://localhost:8000).
 */
import { resolve } from 'node:path';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

const root = import.meta.dirname;
const gateway = process.env.ARCHON_URL ?? 'http://localhost:8000';

export default defineConfig({
  root,
  base: '/',
  plugins: [
    preact(),
    {
      name: 'archon-ops-path',
      // The gateway serves the console at /ops; the dev server does the same.
      configureServer(server) {
        server.middlewares.use((req, _res, next) => {
          if (req.url === '/ops' || req.url?.startsWith('/ops?')) req.url = '/ops.html';
          next();
        });
      },
    },
  ],
  build: {
    outDir: resolve(root, '../dist/web'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    rollupOptions: {
      input: { dashboard: resolve(root, 'index.html'), ops: resolve(root, 'ops.html') },
    },
  },
  server: {
    proxy: {
      '/api': { target: gateway, ws: true },
    },
  },
});
