/**
 * Expectations on a test run (`expect.yaml`) and their comparison with what the run did.
 *
 * ```yaml
 * status: completed                                  # the run's status
 * order: [planning, design, implementation, review, implementation, review]   # phases in completion order
 * phases:
 *   review: { status: completed, iterations: 2, calls: 2 }   # per phase: status, iterations, model calls
 * context:
 *   review: { verdict: approve }                     # the final shared context: only the fields given are compared
 * ```
 */
import { FleetError } from '@agentfleet/core';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { TestRun } from './test-fleet.js';

const ExpectSchema = z.strictObject({
  status: z.enum(['completed', 'failed', 'cancelled', 'waiting']).optional(),
  order: z.array(z.string()).optional(),
  phases: z
    .record(
      z.string(),
      z.strictObject({
        status: z.enum(['pending', 'queued', 'running', 'retrying', 'completed', 'failed', 'skipped', 'cancelled', 'waiting']).optional(),
        iterations: z.number().int().min(0).optional(),
        calls: z.number().int().min(0).optional(),
        attempts: z.number().int().min(0).optional(),
        error: z.string().optional().describe('the error code'),
      }),
    )
    .optional(),
  context: z.record(z.string(), z.unknown()).optional(),
});

/** What a test run must show. */
export type Expectations = z.infer<typeof ExpectSchema>;

/**
 * Read `expect.yaml` (text or object).
 * @throws FleetError `INVALID_INPUT` naming the path of the first problem.
 */
export function parseExpectations(raw: unknown, source = 'expect'): Expectations {
  let doc: unknown = raw;
  if (typeof raw === 'string') {
    try {
      doc = parseYaml(raw);
    } catch (err) {
      throw new FleetError('INVALID_INPUT', `${source}: not valid YAML: ${(err as Error).message}`);
    }
  }
  const parsed = ExpectSchema.safeParse(doc ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new FleetError('INVALID_INPUT', `${source}: ${issue.path.join('.') || '(top)'}: ${issue.message}`);
  }
  return parsed.data;
}

/** One difference: where, what was expected, what the run did. */
export interface Mismatch {
  path: string;
  expected: unknown;
  actual: unknown;
}

/** Compare a run with its expectations; an empty list means it matched. */
export function compareRun(run: TestRun, expected: Expectations): Mismatch[] {
  const out: Mismatch[] = [];
  const check = (path: string, want: unknown, got: unknown) => {
    if (want !== undefined && JSON.stringify(want) !== JSON.stringify(got)) out.push({ path, expected: want, actual: got });
  };
  check('status', expected.status, run.result.status);
  check(
    'order',
    expected.order,
    run.events.filter((e) => e.type === 'phase_completed').map((e) => e.phase),
  );
  for (const [name, want] of Object.entries(expected.phases ?? {})) {
    const phase = run.result.phases.find((p) => p.name === name);
    if (!phase) {
      out.push({ path: `phases.${name}`, expected: want, actual: 'no such phase' });
      continue;
    }
    check(`phases.${name}.status`, want.status, phase.status);
    check(`phases.${name}.iterations`, want.iterations, phase.iterations);
    check(`phases.${name}.attempts`, want.attempts, phase.attempts);
    check(`phases.${name}.calls`, want.calls, run.calls[name] ?? 0);
    check(`phases.${name}.error`, want.error, phase.error?.code);
  }
  const subset = (path: string, want: unknown, got: unknown) => {
    if (want && typeof want === 'object' && !Array.isArray(want) && got && typeof got === 'object' && !Array.isArray(got)) {
      for (const [k, v] of Object.entries(want)) subset(`${path}.${k}`, v, (got as Record<string, unknown>)[k]);
    } else check(path, want, got);
  };
  for (const [key, want] of Object.entries(expected.context ?? {})) subset(`context.${key}`, want, run.result.results[key]);
  return out;
}

/** The differences as a diff for a terminal: `- expected` / `+ actual` under each path. */
export function formatMismatches(mismatches: readonly Mismatch[], source = 'expect'): string {
  const lines = [`${mismatches.length} difference${mismatches.length === 1 ? '' : 's'} from ${source}:`];
  for (const m of mismatches) {
    lines.push(`  ${m.path}`, `    - expected: ${JSON.stringify(m.expected)}`, `    + actual:   ${JSON.stringify(m.actual)}`);
  }
  return lines.join('\n');
}
