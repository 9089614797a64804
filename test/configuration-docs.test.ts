/**
 * docs/configuration.md is the settings schema rendered (`npm run docs:config`): the committed page
 * must be what the schema renders now, and every `FLEET_*` variable the code reads must be in the
 * schema, so no setting is undocumented or documented but read by nothing.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { SETTINGS_SCHEMA } from '../packages/core/src/config.js';
import { renderConfigurationReference } from '../packages/core/src/config-reference.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Every non-test TypeScript source of the workspaces. */
async function sources(): Promise<string[]> {
  const out: string[] = [];
  for (const top of ['apps', 'packages']) {
    for (const entry of await readdir(join(root, top), { recursive: true, withFileTypes: true })) {
      const path = join(entry.parentPath, entry.name);
      if (entry.isFile() && /\.tsx?$/.test(entry.name) && !/\.test\.tsx?$/.test(entry.name) && !/[\\/](node_modules|dist)[\\/]/.test(path)) out.push(path);
    }
  }
  return out;
}

describe('docs/configuration.md', () => {
  it('is what the settings schema renders (run `npm run docs:config` after changing the schema)', async () => {
    const committed = await readFile(join(root, 'docs', 'configuration.md'), 'utf8');
    expect(committed, 'docs/configuration.md is stale: run `npm run docs:config` and commit it').toBe(renderConfigurationReference());
  });

  it('lists every setting with a type, a default or what happens unset, and a description', async () => {
    const page = await readFile(join(root, 'docs', 'configuration.md'), 'utf8');
    for (const name of Object.keys(SETTINGS_SCHEMA.shape)) {
      const row = page.split('\n').find((line) => line.startsWith(`| \`${name}\` |`));
      expect(row, name).toBeDefined();
      const cells = (row ?? '').split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
      expect(cells.length, name).toBe(4);
      expect(cells.every((c) => c.length > 0), `${name}: ${row}`).toBe(true);
    }
  });

  it('covers every FLEET_* variable the code reads, and documents none that nothing reads', async () => {
    const read = new Map<string, string>();
    for (const file of await sources()) {
      const text = await readFile(file, 'utf8');
      // process.env.X, env.X, env['X'], commander's .env('X'); in config.ts, the parsed settings `e.X`.
      for (const m of text.matchAll(/\benv(?:\.|\[['"])([A-Z][A-Z0-9_]+)|\.env\(['"]([A-Z][A-Z0-9_]+)['"]\)|\be\.([A-Z][A-Z0-9_]+)\b/g)) {
        const name = m[1] ?? m[2] ?? m[3] ?? '';
        if (m[3] !== undefined && !file.endsWith(join('core', 'src', 'config.ts'))) continue;
        if (!read.has(name)) read.set(name, relative(root, file));
      }
    }
    expect(read.size).toBeGreaterThan(10);
    const documented = new Set(Object.keys(SETTINGS_SCHEMA.shape));
    const missing = [...read]
      .filter(([name]) => name.startsWith('FLEET_') && !documented.has(name))
      .map(([name, file]) => `${name} (read in ${file}): add it to SETTINGS_SCHEMA in packages/core/src/config.ts`);
    expect(missing).toEqual([]);
    const unread = [...documented].filter((name) => !read.has(name)).map((name) => `${name} is documented but read by nothing: remove it from SETTINGS_SCHEMA, or read it`);
    expect(unread).toEqual([]);
  });
});
