/**
 * `npm run bench` works end to end: the benchmark compiles, starts its private redis-server, runs the
 * bare BullMQ chain and the real `fleet manager` / `fleet agents` processes, and writes its results
 * file and table. A smoke run (`--quick`, two scenarios); it asserts what was measured and written,
 * never how fast (benchmarks are not timed assertions). `npm run bench:console` likewise, with a few
 * runs, a small DAG and one sample per figure (it drives Debian's Chromium, like the console tests).
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
      expect(run.stdout).toContain('| 1 | overhead | CPU per phase: all |');

      const files = readdirSync(out).filter((f) => f.endsWith('.json'));
      expect(files).toHaveLength(1);
      const results = JSON.parse(readFileSync(join(out, files[0]!), 'utf8')) as { scenarios: Array<{ name: string; summary: Record<string, number>; targets: Array<{ value: number; pass: boolean }> }> };
      expect(results.scenarios.map((s) => s.name)).toEqual(['overhead', 'dag']);
      const [overhead, dag] = results.scenarios;
      // Both systems were measured: positive per-phase times, and a DAG wall time no shorter than its critical path.
      expect(overhead!.summary.bull_p50_ms).toBeGreaterThan(0);
      expect(overhead!.summary.fleet_p50_ms).toBeGreaterThan(0);
      // CPU per phase is read from /proc and Redis INFO: both systems did work, so both are counted.
      expect(overhead!.summary.bull_cpu_us_per_phase).toBeGreaterThan(0);
      expect(overhead!.summary.fleet_cpu_us_per_phase).toBeGreaterThan(0);
      expect(dag!.summary.bull_wall_over_critical).toBeGreaterThanOrEqual(1);
      expect(dag!.summary.fleet_wall_over_critical).toBeGreaterThanOrEqual(1);
      for (const s of results.scenarios) for (const t of s.targets) expect(Number.isFinite(t.value)).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 180_000);

  it('a tiny run of the console benchmark measures the API and both pages and writes its results', () => {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const built = spawnSync(process.execPath, [tsc, '-p', 'bench'], { cwd: root, encoding: 'utf8' });
    expect(built.status, built.stdout + built.stderr).toBe(0);

    const out = mkdtempSync(join(tmpdir(), 'fleet-bench-console-smoke-'));
    try {
      const run = spawnSync(process.execPath, ['bench/dist/console.js', '--runs', '60', '--phases', '6', '--samples', '1', '--out', out], {
        cwd: root,
        encoding: 'utf8',
        timeout: 150_000,
      });
      expect(run.status, run.stderr.slice(-4000)).toBe(0);
      expect(run.stdout).toContain('| API: runs list, first page |');
      expect(run.stdout).toContain('| first render: runs list (25 rows) |');
      expect(run.stdout).toContain('| first render: run page, 6-phase DAG |');

      const files = readdirSync(out).filter((f) => f.startsWith('console-') && f.endsWith('.json'));
      expect(files).toHaveLength(1);
      const results = JSON.parse(readFileSync(join(out, files[0]!), 'utf8')) as { runs: number; rows: Record<string, number>; figures: Array<{ name: string; median: number; p95: number }> };
      expect(results.runs).toBe(60);
      // The first page is full, and the user key's page holds its own runs only (a fifth of the copies and its real run).
      expect(results.rows['API: runs list, first page']).toBe(25);
      expect(results.rows['API: user key, its own runs']).toBe(13);
      for (const f of results.figures) {
        expect(f.median, f.name).toBeGreaterThan(0);
        expect(f.p95, f.name).toBeGreaterThanOrEqual(f.median);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 180_000);
});
