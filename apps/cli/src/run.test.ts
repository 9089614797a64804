import { readFileSync } from 'node:fs';
import type { PhaseResult, RunResult } from '@agentfleet/core';
import { describe, expect, it } from 'vitest';
import { summary } from './run.js';

/** The fenced block of a docs page that follows `<!-- checked by TEST -->`, without its last newline. */
function checkedSample(page: string, test: string): string {
  const markdown = readFileSync(new URL(`../../../${page}`, import.meta.url), 'utf8');
  const marker = `<!-- checked by ${test} -->\n\`\`\`\n`;
  const start = markdown.indexOf(marker);
  if (start < 0) throw new Error(`${page} has no block marked <!-- checked by ${test} -->`);
  return markdown.slice(start + marker.length, markdown.indexOf('\n```', start + marker.length));
}


const usage = { input_tokens: 10, output_tokens: 5, cache_read_input_tokens: 0, cache_creation_input_tokens: 0, cost_usd: 0.01 };

function phase(name: string, agent: string, durationMs: number, extra: Partial<PhaseResult> = {}): PhaseResult {
  return { name, agent, status: 'completed', attempts: 1, iterations: 1, duration_ms: durationMs, usage, prompt_cache_hit_rate: 0, ...extra };
}

function result(phases: PhaseResult[], models: string[], extra: Partial<RunResult> = {}): RunResult {
  return {
    run_id: 'r1',
    workflow: { name: 'software-delivery', version: '1.0.0' },
    status: 'completed',
    requirements: 'x',
    variables: {},
    created_at: '2026-01-01T00:00:00.000Z',
    finished_at: '2026-01-01T00:01:00.000Z',
    duration_ms: 61_300,
    phases,
    completed_phases: phases.map((p) => p.name),
    failed_phases: [],
    skipped_phases: [],
    parallel_speedup: 0.83,
    results: {},
    errors: [],
    usage,
    prompt_cache_hit_rate: 0,
    batch_savings_usd: 0,
    provider: 'anthropic',
    model: models[0] ?? null,
    models,
    artifacts_dir: '/tmp/runs/r1',
    links: {},
    waiting_for: [],
    ...extra,
  };
}

describe('the summary fleet run prints', () => {
  it('lines up the model column whatever the durations and attempts', () => {
    const text = summary(
      result(
        [
          phase('planning', 'planner', 4200, { model: 'claude-sonnet-4' }),
          phase('implementation', 'coder', 31_000, { model: 'claude-sonnet-4', attempts: 2 }),
          phase('review', 'reviewer', 6100, { model: 'claude-haiku-4-5' }),
        ],
        ['claude-sonnet-4', 'claude-haiku-4-5'],
      ),
    );
    const rows = text.split('\n').filter((l) => l.startsWith('  completed'));
    expect(rows).toHaveLength(3);
    const columns = rows.map((l) => l.search(/claude-/));
    expect(new Set(columns).size, text).toBe(1);
    expect(rows[1]).toContain('31.0s (2 attempts)');
  });

  it('has no model column and no trailing spaces with one model', () => {
    const text = summary(result([phase('planning', 'planner', 4200, { model: 'm' }), phase('design', 'designer', 9800, { model: 'm' })], ['m']));
    for (const l of text.split('\n')) expect(l).toBe(l.trimEnd());
    expect(text).toContain('  completed   planning          planner     4.2s\n');
  });
});

describe('the summary sample of docs/following-runs.md', () => {
  it('is what summary prints for that run', () => {
    const sonnet = { model: 'claude-sonnet-4' };
    const r = result(
      [
        phase('planning', 'planner', 4200, sonnet),
        phase('design', 'designer', 9800, sonnet),
        phase('implementation', 'coder', 31_000, sonnet),
        phase('review', 'reviewer', 6100, { model: 'claude-haiku-4-5' }),
      ],
      ['claude-sonnet-4', 'claude-haiku-4-5'],
      {
        run_id: '3f0c…',
        duration_ms: 61_300,
        usage: { input_tokens: 9120, output_tokens: 7311, cache_read_input_tokens: 0, cache_creation_input_tokens: 0, cost_usd: 0.137 },
        artifacts_dir: '/home/me/runs/3f0c…',
      },
    );
    expect(summary(r).trim()).toBe(checkedSample('docs/following-runs.md', 'apps/cli/src/run.test.ts'));
  });
});
