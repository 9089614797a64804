import { describe, expect, it } from 'vitest';
import { compileWorkflow } from '../workflow/compile.js';
import { minePatterns, type HistoryRun, type HistoryStep } from './mine.js';
import { suggestWorkflow } from './suggest.js';

/** A deterministic pseudo-random generator (mulberry32), so the generated history is the same every run. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const step = (label: string, status: HistoryStep['status'] = 'completed', durationMs = 100): HistoryStep => ({ label, phase: label.replace(/[^a-z_]/gi, '_'), status, durationMs });

/**
 * A history of 60 runs: noise steps drawn from a pool of 12 labels that never repeat a planted
 * sequence, with three sequences planted:
 * - A (fetch → summarize → write) in 12 runs, all succeeding, steps 100 + 200 + 50 ms;
 * - B (plan → code → review → code → review) in 5 runs, one of which fails at its last step;
 * - C (lint → test) in 2 runs only (under min-frequency 3);
 * - D (deploy → notify) in 6 runs, 3 failing (success rate 0.5, under 0.8).
 */
function generatedHistory(): HistoryRun[] {
  const random = rng(42);
  const noise = Array.from({ length: 12 }, (_, i) => `agent:noise${i}`);
  const A = [step('tool:http_request', 'completed', 100), step('agent:summarizer', 'completed', 200), step('tool:write_file', 'completed', 50)];
  const B = ['agent:planner', 'agent:coder', 'agent:reviewer', 'agent:coder', 'agent:reviewer'];
  const runs: HistoryRun[] = [];
  for (let r = 0; r < 60; r++) {
    const steps: HistoryStep[] = [];
    // Noise steps come from their own labels, so chance repeats among them never touch the planted
    // labels; the assertions look at sequences made only of planted labels.
    const n = 1 + Math.floor(random() * 3);
    const shuffled = [...noise].sort(() => random() - 0.5);
    for (let i = 0; i < n; i++) steps.push(step(shuffled[i] as string, 'completed', 10));
    if (r < 12) steps.push(...A.map((s) => ({ ...s })));
    if (r >= 12 && r < 17) steps.push(...B.map((l, i) => step(l, r === 16 && i === 4 ? 'failed' : 'completed', 30)));
    if (r >= 17 && r < 19) steps.push(step('tool:lint'), step('tool:test'));
    if (r >= 19 && r < 25) steps.push(step('tool:deploy'), step('tool:notify', r < 22 ? 'failed' : 'completed'));
    steps.push(step(shuffled[n] as string, 'completed', 10));
    runs.push({ runId: `run-${r}`, workflow: 'w', status: 'completed', steps });
  }
  return runs;
}

describe('minePatterns', () => {
  const history = generatedHistory();
  const planted = (p: { steps: string[] }) => !p.steps.some((s) => s.startsWith('agent:noise'));

  it('finds the planted sequences with the right counts, success rates and mean durations', () => {
    const found = minePatterns(history, { minFrequency: 3, minSuccessRate: 0.8, maxLength: 5 }).filter(planted);
    expect(found.map((p) => [p.steps.join(' '), p.frequency, p.successes])).toEqual([
      ['tool:http_request agent:summarizer tool:write_file', 12, 12],
      ['agent:planner agent:coder agent:reviewer agent:coder agent:reviewer', 5, 4],
    ]);
    const a = found[0];
    expect(a?.successRate).toBe(1);
    expect(a?.meanDurationMs).toBe(350);
    expect(a?.runIds).toEqual(history.slice(0, 12).map((r) => r.runId));
    expect(found[1]?.successRate).toBe(0.8);
    expect(found[1]?.meanDurationMs).toBe(150);
  });

  it('ignores sequences under the thresholds: too rare (lint → test), too often failing (deploy → notify), too long', () => {
    const all = minePatterns(history, { minFrequency: 1, minSuccessRate: 0, maxLength: 5, closed: false });
    const key = (p: { steps: string[] }) => p.steps.join(' ');
    expect(all.find((p) => key(p) === 'tool:lint tool:test')?.frequency).toBe(2);
    expect(all.find((p) => key(p) === 'tool:deploy tool:notify')).toMatchObject({ frequency: 6, successes: 3, successRate: 0.5 });
    const kept = minePatterns(history, { minFrequency: 3, minSuccessRate: 0.8, maxLength: 5, closed: false }).map(key);
    expect(kept).not.toContain('tool:lint tool:test');
    expect(kept).not.toContain('tool:deploy tool:notify');
    // The five-step loop exceeds --max-length 4; its four-step windows stay.
    const short = minePatterns(history, { minFrequency: 3, minSuccessRate: 0.8, maxLength: 4 }).filter(planted).map(key);
    expect(short).not.toContain('agent:planner agent:coder agent:reviewer agent:coder agent:reviewer');
    expect(short).toContain('agent:planner agent:coder agent:reviewer agent:coder');
  });

  it('closed patterns: sub-sequences that never occur without the longer one are left out; counting is per run', () => {
    const open = minePatterns(history, { closed: false }).filter(planted).map((p) => p.steps.join(' '));
    expect(open).toContain('tool:http_request agent:summarizer');
    const closed = minePatterns(history).filter(planted).map((p) => p.steps.join(' '));
    expect(closed).not.toContain('tool:http_request agent:summarizer');
    // coder → reviewer occurs twice in each B run but counts once per run.
    expect(minePatterns(history, { closed: false }).find((p) => p.steps.join(' ') === 'agent:coder agent:reviewer')?.frequency).toBe(5);
  });

  it('refuses thresholds out of range, naming the flag', () => {
    expect(() => minePatterns(history, { minSuccessRate: 1.5 })).toThrow(/--min-success-rate/);
    expect(() => minePatterns(history, { maxLength: 1 })).toThrow(/--max-length/);
    expect(() => minePatterns(history, { minFrequency: 0 })).toThrow(/--min-frequency/);
  });
});

describe('suggestWorkflow', () => {
  it('turns a mined pattern into a valid workflow with the settings of the phases that ran', () => {
    const def = compileWorkflow({
      name: 'src',
      agents: ['summarizer'],
      variables: { base_url: 'http://127.0.0.1:1', unused: 'x' },
      phases: [
        { name: 'fetch', tool: 'http_request', parameters: { url: '{{base_url}}/doc' }, timeout: 20, retries: 4 },
        { name: 'summarize', agent: 'summarizer', depends_on: ['fetch'], instructions: 'Summarise {{fetch.body}}' },
        { name: 'save', tool: 'write_file', parameters: { path: 'out.md', content: '{{summarize.summary}}' }, depends_on: ['summarize'] },
      ],
    });
    const steps = def.phases.map((p) => ({ label: p.kind === 'tool' ? `tool:${p.tool}` : `agent:${p.agent}`, phase: p.name, status: 'completed' as const, durationMs: 10, definition: p }));
    const history: HistoryRun[] = [1, 2, 3].map((i) => ({ runId: `r${i}`, workflow: 'src', status: 'completed', steps, variables: def.variables }));
    const [pattern] = minePatterns(history);
    expect(pattern?.steps).toEqual(['tool:http_request', 'agent:summarizer', 'tool:write_file']);
    const { body, definition } = suggestWorkflow(pattern!, history, { name: 'learned-digest' });
    expect(definition.phases.map((p) => [p.name, p.kind, p.dependsOn.map((d) => d.phase)])).toEqual([
      ['fetch', 'tool', []],
      ['summarize', 'agent', ['fetch']],
      ['save', 'tool', ['summarize']],
    ]);
    expect(definition.phases[0]).toMatchObject({ tool: 'http_request', parameters: { url: '{{base_url}}/doc' }, timeoutMs: 20_000, retries: 4 });
    expect(body).toMatchObject({ category: 'learned', variables: { base_url: 'http://127.0.0.1:1' } });
    expect(body.variables).not.toHaveProperty('unused');
    expect(definition.agents).toEqual(['summarizer']);
  });
});
