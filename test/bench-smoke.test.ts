/**
 * `npm run bench` works end to end: the benchmark compiles, starts its private redis-server, runs the
 * bare BullMQ chain and the real `fleet manager` / `fleet agents` processes, and writes its results
 * file and table. A smoke run (`--quick`, two scenarios); it asserts what was measured and written,
 * never how fast (benchmarks are not timed assertions).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');

describe('npm run bench', () => {
  it('a quick run of the overhead and DAG scenarios writes a results file and a table with both systems', () => {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const built = spawnSync(process.execPath, [tsc, '-p', 'bench'], { cwd: root, encoding: 'utf8' });
    expect(built.status, built.stdout + built.stderr).toBe(0);

    const out = mkdtempSync(join(tmpdir(), 'fleet-bench-smoke-'));
    try {
      const run = spawnSync(process.execPath, ['bench/dist/main.js', '--quick', '--scenario', 'overhead,dag', '--out', out], {
        cwd: root,
        encoding: 'utf8',
        timeout: 150_000,
      });
      expect(run.status, run.stderr.slice(-4000)).toBe(0);
      expect(run.stdout).toContain('| 1 | overhead | per-phase p50 |');
      expect(run.stdout).toContain('| 5 | dag | wall time p50 / critical path |');
      expect(run.stdout).toContain('| per-phase p50 ≤ 1.5× bare chain |');

      const files = readdirSync(out).filter((f) => f.endsWith('.json'));
      expect(files).toHaveLength(1);
      const results = JSON.parse(readFileSync(join(out, files[0]!), 'utf8')) as { scenarios: Array<{ name: string; summary: Record<string, number>; targets: Array<{ value: number; pass: boolean }> }> };
      expect(results.scenarios.map((s) => s.name)).toEqual(['overhead', 'dag']);
      const [overhead, dag] = results.scenarios;
      // Both systems were measured: positive per-phase times, and a DAG wall time no shorter than its critical path.
      expect(overhead!.summary.bull_p50_ms).toBeGreaterThan(0);
      expect(overhead!.summary.fleet_p50_ms).toBeGreaterThan(0);
      expect(dag!.summary.bull_wall_over_critical).toBeGreaterThanOrEqual(1);
      expect(dag!.summary.fleet_wall_over_critical).toBeGreaterThanOrEqual(1);
      for (const s of results.scenarios) for (const t of s.targets) expect(Number.isFinite(t.value)).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 180_000);
});
