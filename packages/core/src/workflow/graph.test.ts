import { describe, expect, it } from 'vitest';
import { compileWorkflow } from './compile.js';
import { downstreamOf, upstreamOf } from './graph.js';

const diamond = compileWorkflow({
  name: 'diamond',
  agents: ['worker'],
  phases: [
    { name: 'plan', agent: 'worker' },
    { name: 'left', agent: 'worker', depends_on: ['plan'] },
    { name: 'right', agent: 'worker', depends_on: ['plan'] },
    { name: 'join', agent: 'worker', depends_on: ['left', { phase: 'right', optional: true }] },
    { name: 'side', agent: 'worker' },
  ],
});

describe('workflow closures', () => {
  it('are computed when the workflow is compiled, each in dependency order', () => {
    const byName = Object.fromEntries(diamond.phases.map((p) => [p.name, { upstream: p.upstream, downstream: p.downstream }]));
    expect(byName).toEqual({
      plan: { upstream: [], downstream: ['left', 'right', 'join'] },
      left: { upstream: ['plan'], downstream: ['join'] },
      right: { upstream: ['plan'], downstream: ['join'] },
      join: { upstream: ['plan', 'left', 'right'], downstream: [] },
      side: { upstream: [], downstream: [] },
    });
    expect(upstreamOf(diamond, 'join')).toEqual(['plan', 'left', 'right']);
    expect(downstreamOf(diamond, 'plan')).toEqual(['left', 'right', 'join']);
  });

  it('are the same for a definition stored without them (a run created by an earlier version)', () => {
    const stored = { phases: diamond.phases.map(({ upstream: _u, downstream: _d, ...p }) => p) };
    for (const p of diamond.phases) {
      expect(upstreamOf(stored, p.name)).toEqual(p.upstream);
      expect(downstreamOf(stored, p.name)).toEqual(p.downstream);
    }
    expect(upstreamOf(stored, 'no-such-phase')).toEqual([]);
  });
});
