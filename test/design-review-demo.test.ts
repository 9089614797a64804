/**
 * The offline `design-review` demo through the real `fleet run`: both reviews review the design they
 * are given (there is no implementation in this workflow), `review.md` holds both, and the merge is
 * written as `summary.md`. Real Redis, the manager and pools in the CLI's process, offline model.
 */
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reviewer } from '@agentfleet/agents';
import { afterAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

const prefixes: string[] = [];
afterAll(async () => {
  for (const p of prefixes) await cleanupPrefix(redisUrl(), p);
});

describe('the offline design-review demo', () => {
  it('reviews the design from both angles, writes both reviews in review.md and the merge in summary.md', async () => {
    const p = uniquePrefix('design-review');
    prefixes.push(p);
    const out = mkdtempSync(join(tmpdir(), 'fleet-design-review-'));
    const run = await runCli(['run', 'Build a URL shortener with click statistics', '--workflow', 'design-review', '--out', out], cliEnv(redisUrl(), p), { timeoutMs: 120_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['design.md', 'result.json', 'review.md', 'summary.md']);

    const review = readFileSync(join(out, 'review.md'), 'utf8');
    expect(review).not.toContain('no implementation was provided');
    expect(review).toContain('## security_review');
    expect(review).toContain('## operability_review');
    expect(review).toContain('Reviewed the design for security (there is no implementation yet)');
    expect(review).toContain('Reviewed the design for operability (there is no implementation yet)');
    expect(review).toMatch(/no decision on authentication or authorization/);
    expect(review).toMatch(/the store is in memory/);

    const summary = readFileSync(join(out, 'summary.md'), 'utf8');
    expect(summary).toContain('# Summary (merge)');
    expect(summary).toContain('**Verdict: changes_requested**');
    expect(summary).toContain('security_review: major: no decision on authentication or authorization');
    expect(summary).toContain('operability_review: major: the store is in memory');
  }, 180_000);

  it('a reviewer whose implementation failed to arrive still says there is none to review', () => {
    const design = { architecture: 'a service', components: [{ name: 'api', responsibility: 'serves', interfaces: [] }], data_model: [], api_endpoints: [], decisions: [] };
    const review = reviewer.offline({
      requirements: 'x',
      variables: {},
      phase: 'review',
      instructions: undefined,
      upstream: [{ phase: 'design', role: 'designer', output: design }],
      upstreamErrors: [{ phase: 'implementation', error: 'PROVIDER_BAD_REQUEST: bad request' }],
    });
    expect(review.verdict).toBe('changes_requested');
    expect(review.findings).toContainEqual({ severity: 'major', file: '', message: 'no implementation was provided to review' });
  });
});
