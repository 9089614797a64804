// Write docs/configuration.md from the settings schema (packages/core/src/config.ts, built to dist).
// Run as `npm run docs:config`, which builds first; test/configuration-docs.test.ts fails when the
// committed page is stale.
import { writeFile } from 'node:fs/promises';
import { renderConfigurationReference } from '../packages/core/dist/index.js';

const target = new URL('../docs/configuration.md', import.meta.url);
await writeFile(target, renderConfigurationReference());
console.log(`wrote ${target.pathname}`);
