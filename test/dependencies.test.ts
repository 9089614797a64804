/**
 * Dependency hygiene of every workspace: each runtime dependency is imported by the workspace's own
 * (non-test) source, so test-only packages live in devDependencies and unused ones are gone (a
 * declared `@types/<name>` counts when `<name>` is a dependency of another declared dependency: the
 * types that dependency's own declarations import and do not ship); and the
 * `engines.node` floor we declare is at least the floor of every production dependency installed
 * (otherwise `npm install` on the oldest Node we claim warns EBADENGINE and the package may break).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const workspaces = ['packages/core', 'packages/host', 'apps/agents', 'apps/manager', 'apps/cli'];

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  engines?: { node?: string };
}

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sources(path)));
    else if (/\.(ts|tsx|js|mjs)$/.test(entry.name) && !/\.test\.tsx?$/.test(entry.name)) out.push(path);
  }
  return out;
}

/** `>=22.15.0` → [22, 15, 0]; undefined for any other form of range. */
function floor(range: string | undefined): [number, number, number] | undefined {
  const m = /^>=\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(range?.trim() ?? '');
  return m ? [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)] : undefined;
}

function atLeast(a: [number, number, number], b: [number, number, number]): boolean {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return (a[i] as number) > (b[i] as number);
  return true;
}

describe('dependencies', () => {
  it.each(workspaces)('%s imports every runtime dependency it declares from its own source', async (ws) => {
    const manifest = JSON.parse(await readFile(join(root, ws, 'package.json'), 'utf8')) as Manifest;
    const files = [...(await sources(join(root, ws, 'src'))), ...(ws === 'apps/cli' ? await sources(join(root, ws, 'bin')) : [])];
    const text = (await Promise.all(files.map((f) => readFile(f, 'utf8')))).join('\n');
    const declared = Object.keys(manifest.dependencies ?? {});
    const transitive = new Set<string>();
    for (const dep of declared) {
      const installed = JSON.parse(await readFile(join(root, 'node_modules', dep, 'package.json'), 'utf8')) as Manifest;
      for (const name of Object.keys(installed.dependencies ?? {})) transitive.add(name);
    }
    const unused = declared.filter((dep) => {
      if (dep.startsWith('@types/') && transitive.has(dep.slice('@types/'.length))) return false;
      const escaped = dep.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      return !new RegExp(`(from|import\\(|require\\()\\s*'${escaped}(/[^']*)?'`).test(text);
    });
    expect(unused, `${manifest.name}: move test-only packages to the root devDependencies, remove unused ones`).toEqual([]);
  });

  it('engines.node of every workspace is at least the floor of every installed production dependency', async () => {
    const lock = JSON.parse(await readFile(join(root, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; engines?: { node?: string } | string[]; link?: boolean }>;
    };
    const ours = floor((JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as Manifest).engines?.node);
    expect(ours).toBeDefined();
    for (const ws of workspaces) {
      const manifest = JSON.parse(await readFile(join(root, ws, 'package.json'), 'utf8')) as Manifest;
      expect(floor(manifest.engines?.node), manifest.name).toEqual(ours);
    }
    const above: string[] = [];
    for (const [path, pkg] of Object.entries(lock.packages)) {
      if (path === '' || pkg.dev === true || pkg.link === true || Array.isArray(pkg.engines)) continue;
      const theirs = floor(pkg.engines?.node);
      if (theirs && !atLeast(ours!, theirs)) above.push(`${path} needs node ${pkg.engines?.node}`);
    }
    expect(above).toEqual([]);
  });
});
