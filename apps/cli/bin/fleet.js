#!/usr/bin/env node
// The `fleet` command. The TypeScript sources are compiled by `npm ci` (the root `prepare` script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('fleet: the CLI is not built yet. Run `npm run build` (or `npm ci`) in the repository root.\n');
  process.exit(2);
}
await import(entry.href);
