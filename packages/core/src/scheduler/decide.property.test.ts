/**
 * Property-based tests (fast-check) of the functional core against hostile and random input:
 *
 * 1. `compileWorkflow` on random workflow objects (valid DAGs, cycles, self and unknown dependencies,
 *    wrong types, unknown fields): it returns a definition or throws `INVALID_WORKFLOW` whose
 *    `details.issues` name a path and a problem. It never throws anything else.
 * 2. `decide` on random valid DAGs driven by a random interleaving of plausible worker reports
 *    (starts, completions, transient and permanent failures, deadlines), mixed with noise (duplicate,
 *    stale and unknown-phase reports; some phases run as child runs and end by `child_run_finished`,
 *    which every other phase refuses): it never throws, refuses every report once the run ended, and,
 *    since every phase eventually completes or fails, the run always reaches a terminal status with
 *    exactly one `run_finished` event.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FleetError, type SerializedFleetError } from '../errors.js';
import { compileWorkflow } from '../workflow/compile.js';
import type { WorkflowDefinition } from '../workflow/definition.js';
import { decide, initialRunState, isTerminalRun } from './decide.js';
import type { RunEvent, RunState, SchedulerEvent } from './types.js';

const ROLES = ['planner', 'coder', 'reviewer'] as const;
const usage = { input_tokens: 3, output_tokens: 2 };
const transient: SerializedFleetError = { code: 'PROVIDER_OVERLOADED', message: 'overloaded', category: 'provider', retryable: true };
const permanent: SerializedFleetError = { code: 'PROVIDER_BAD_REQUEST', message: 'bad request', category: 'provider', retryable: false };

/** A valid DAG in file form: phase i depends only on phases before it. */
const dagFile = fc
  .integer({ min: 1, max: 8 })
  .chain((n) =>
    fc.record({
      continueOnError: fc.boolean(),
      maxTotalRetries: fc.integer({ min: 0, max: 5 }),
      phases: fc.tuple(
        ...Array.from({ length: n }, (_, i) =>
          fc.record({
            agent: fc.constantFrom(...ROLES),
            retries: fc.integer({ min: 0, max: 3 }),
            deps: fc.subarray(Array.from({ length: i }, (_, j) => j)),
            optional: fc.boolean(),
            continueOnError: fc.option(fc.boolean(), { nil: undefined }),
            child: fc.boolean(),
          }),
        ),
      ),
    }),
  )
  .map(({ continueOnError, maxTotalRetries, phases }) => ({
    name: 'prop',
    agents: [...ROLES],
    error_handling: { continue_on_error: continueOnError, max_total_retries: maxTotalRetries },
    phases: phases.map((p, i) => ({
      name: `p${i}`,
      ...(p.child ? { workflow: 'child' } : { agent: p.agent }),
      retries: p.retries,
      timeout: 60,
      depends_on: p.deps.map((d, k) => (p.optional && k === 0 ? { phase: `p${d}`, optional: true } : `p${d}`)),
      ...(p.continueOnError === undefined ? {} : { continue_on_error: p.continueOnError }),
    })),
  }));

/** Random mutations that may make a workflow invalid in any way a user (or attacker) could. */
const mutation = fc.oneof(
  fc.constant((w: Record<string, unknown>) => w),
  fc.constant((w: Record<string, unknown>) => ({ ...w, extra_field: true })),
  fc.constant((w: Record<string, unknown>) => ({ ...w, phases: 'not a list' })),
  fc.constant((w: Record<string, unknown>) => ({ ...w, phases: [] })),
  fc.constant((w: Record<string, unknown>) => ({ ...w, name: 42 })),
  fc.constant((w: Record<string, unknown>) => ({ ...w, agents: [] })),
  fc.constant((w: Record<string, unknown>) => {
    const phases = w.phases as Array<Record<string, unknown>>;
    // A self-dependency on the last phase.
    const last = phases[phases.length - 1]!;
    return { ...w, phases: [...phases.slice(0, -1), { ...last, depends_on: [...(last.depends_on as unknown[]), last.name] }] };
  }),
  fc.constant((w: Record<string, unknown>) => {
    const phases = w.phases as Array<Record<string, unknown>>;
    // The first phase depends on the last: a cycle when there are two or more phases.
    return { ...w, phases: [{ ...phases[0]!, depends_on: [phases[phases.length - 1]!.name] }, ...phases.slice(1)] };
  }),
  fc.constant((w: Record<string, unknown>) => {
    const phases = w.phases as Array<Record<string, unknown>>;
    return { ...w, phases: [...phases, { ...phases[0]! }] }; // duplicate name
  }),
  fc.constant((w: Record<string, unknown>) => {
    const phases = w.phases as Array<Record<string, unknown>>;
    return { ...w, phases: [{ ...phases[0]!, depends_on: ['nowhere'], timeout: 'soon', retries: -1, agent: 'ghost' }, ...phases.slice(1)] };
  }),
  fc.anything().map((junk) => (w: Record<string, unknown>) => ({ ...w, phases: [junk] })),
  fc.anything().map((junk) => () => junk),
);

describe('compileWorkflow on random and hostile workflows', () => {
  it('accepts a definition or throws INVALID_WORKFLOW naming each problem; nothing else', () => {
    fc.assert(
      fc.property(dagFile, mutation, (file, mutate) => {
        const raw = mutate(file);
        let def: WorkflowDefinition;
        try {
          def = compileWorkflow(raw);
        } catch (err) {
          expect(err).toBeInstanceOf(FleetError);
          const e = err as FleetError;
          expect(e.code).toBe('INVALID_WORKFLOW');
          const issues = e.details?.issues as Array<{ path: string; message: string }>;
          expect(issues.length).toBeGreaterThan(0);
          for (const issue of issues) {
            expect(typeof issue.path).toBe('string');
            expect(issue.message.length).toBeGreaterThan(0);
            expect(e.message).toContain(issue.message);
          }
          return;
        }
        // Accepted: phases come in dependency order and every dependency exists.
        const seen = new Set<string>();
        for (const p of def.phases) {
          for (const d of p.dependsOn) expect(seen.has(d.phase)).toBe(true);
          seen.add(p.name);
        }
      }),
      { numRuns: 300 },
    );
  });
});

/** What a worker (or a confused one) may report about one phase job. */
type Step =
  | { kind: 'start' | 'complete' | 'fail_transient' | 'fail_permanent' | 'deadline'; pick: number }
  | { kind: 'noise'; pick: number; iterationOffset: number; unknownPhase: boolean; type: 'phase_started' | 'phase_completed' | 'phase_attempt_failed' | 'phase_deadline' | 'child_run_finished' };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('start' as const), pick: fc.nat() }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('complete' as const), pick: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('fail_transient' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('fail_permanent' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deadline' as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('noise' as const),
      pick: fc.nat(),
      iterationOffset: fc.integer({ min: -1, max: 1 }),
      unknownPhase: fc.boolean(),
      type: fc.constantFrom('phase_started' as const, 'phase_completed' as const, 'phase_attempt_failed' as const, 'phase_deadline' as const, 'child_run_finished' as const),
    }),
  },
);

/** A simulated fleet: phase jobs in flight as BullMQ would hold them, fed to decide. */
class Fleet {
  state: RunState;
  at = 1;
  readonly events: RunEvent[] = [];
  /** Phase → { iteration, attempt } of its job in flight. */
  readonly inFlight = new Map<string, { iteration: number; attempt: number; maxAttempts: number; child: boolean }>();
  /** Accepted reports that carry usage (completions and failed attempts, noise included). */
  billedReports = 0;

  constructor(readonly def: WorkflowDefinition) {
    this.state = initialRunState(def, 0);
    this.send({ type: 'run_started', at: this.at });
  }

  send(event: SchedulerEvent): boolean {
    const wasTerminal = isTerminalRun(this.state.status);
    const d = decide(this.def, this.state, event);
    if (wasTerminal) expect(d.accepted).toBe(false);
    if (!d.accepted) {
      expect(d.state).toBe(this.state);
      return false;
    }
    expect(d.state.version).toBe(this.state.version + 1);
    if ('usage' in event) this.billedReports += 1;
    this.state = d.state;
    this.events.push(...d.events);
    for (const a of d.actions) {
      if (a.type === 'enqueue_phase') {
        const p = this.def.phases.find((x) => x.name === a.phase)!;
        this.inFlight.set(a.phase, { iteration: a.iteration, attempt: 1, maxAttempts: p.retries + 1, child: false });
      } else if (a.type === 'start_child_run') {
        // A child run is the phase's one attempt, whatever its retries.
        this.inFlight.set(a.phase, { iteration: a.iteration, attempt: 1, maxAttempts: 1, child: true });
      } else if (a.type === 'cancel_phase') {
        this.inFlight.delete(a.phase);
      }
    }
    return true;
  }

  /** One step; returns false when nothing is in flight (the run must then have ended). */
  apply(s: Step): boolean {
    this.at += 1;
    const names = [...this.inFlight.keys()];
    if (s.kind === 'noise') {
      const all = this.def.phases.map((p) => p.name);
      const phase = s.unknownPhase ? 'no_such_phase' : all[s.pick % all.length]!;
      const iteration = (this.state.phases[phase]?.iteration ?? 1) + s.iterationOffset;
      const base = { at: this.at, phase, iteration };
      const event: SchedulerEvent =
        s.type === 'phase_started'
          ? { type: s.type, ...base, attempt: 1 }
          : s.type === 'phase_completed'
            ? { type: s.type, ...base, attempt: 1, usage, model: 'm' }
            : s.type === 'phase_attempt_failed'
              ? { type: s.type, ...base, attempt: 1, error: transient, willRetry: true, usage }
              : s.type === 'child_run_finished'
                ? { type: s.type, ...base, childRunId: `${phase}.${iteration}.run`, status: 'completed', usage, model: 'm' }
                : { type: s.type, ...base };
      // Noise about a phase in flight at its current iteration is a real report: keep the job table honest.
      const job = this.inFlight.get(phase);
      const real = job && job.iteration === iteration;
      // A child's outcome for a phase that runs no child run is refused, in flight or not.
      if (s.type === 'child_run_finished' && this.def.phases.find((p) => p.name === phase)?.kind !== 'workflow') {
        expect(this.send(event)).toBe(false);
        return names.length > 0;
      }
      if (real) return true;
      this.send(event);
      return names.length > 0;
    }
    if (names.length === 0) return false;
    const phase = names[s.pick % names.length]!;
    const job = this.inFlight.get(phase)!;
    const base = { at: this.at, phase, iteration: job.iteration, attempt: job.attempt };
    if (job.child) {
      // A child run reports once, when it ends: completed, failed (any failure), or cancelled (a stop).
      if (s.kind === 'start') return true;
      this.inFlight.delete(phase);
      const status = s.kind === 'complete' ? 'completed' : s.kind === 'deadline' ? 'cancelled' : 'failed';
      const childRunId = `${phase}.${job.iteration}.run`;
      const accepted = this.send({ type: 'child_run_finished', at: this.at, phase, iteration: job.iteration, childRunId, status, usage, ...(status === 'completed' ? { model: 'm' } : { error: permanent }) });
      expect(accepted).toBe(true);
      return true;
    }
    switch (s.kind) {
      case 'start':
        this.send({ type: 'phase_started', ...base });
        break;
      case 'complete':
        this.inFlight.delete(phase);
        this.send({ type: 'phase_completed', ...base, usage, model: 'm' });
        break;
      case 'fail_transient': {
        const willRetry = job.attempt < job.maxAttempts;
        if (willRetry) job.attempt += 1;
        else this.inFlight.delete(phase);
        this.send({ type: 'phase_attempt_failed', ...base, error: transient, willRetry, usage });
        // The run's retry cap may turn a retry into a failure: the job then stops for good.
        if (willRetry && this.state.phases[phase]?.status === 'failed') this.inFlight.delete(phase);
        break;
      }
      case 'fail_permanent':
        this.inFlight.delete(phase);
        this.send({ type: 'phase_attempt_failed', ...base, error: permanent, willRetry: false, usage });
        break;
      case 'deadline':
        this.inFlight.delete(phase);
        this.send({ type: 'phase_deadline', at: this.at, phase, iteration: job.iteration });
        break;
    }
    return true;
  }

  /** Finish every job still in flight by completing it (each phase eventually completes or fails). */
  drain(): void {
    for (let guard = 0; this.inFlight.size > 0 && guard < 1000; guard++) this.apply({ kind: 'complete', pick: 0 });
  }
}

describe('decide under random event sequences', () => {
  it('never throws, refuses everything after the end, and always reaches a terminal state with one run_finished', () => {
    fc.assert(
      fc.property(dagFile, fc.array(step, { maxLength: 80 }), (file, steps) => {
        const def = compileWorkflow(file);
        const fleet = new Fleet(def);
        for (const s of steps) if (!fleet.apply(s) && s.kind !== 'noise') break;
        fleet.drain();
        expect(isTerminalRun(fleet.state.status)).toBe(true);
        expect(fleet.events.filter((e) => e.type === 'run_finished')).toHaveLength(1);
        // Every phase ended, and no phase completed twice in one iteration.
        for (const p of def.phases) expect(['completed', 'failed', 'skipped', 'cancelled']).toContain(fleet.state.phases[p.name]?.status);
        const completions = fleet.events.filter((e) => e.type === 'phase_completed').map((e) => `${e.phase}.${(e as { iteration: number }).iteration}`);
        expect(new Set(completions).size).toBe(completions.length);
        // Usage is counted exactly once per accepted report, and never for a refused one.
        expect(fleet.state.usage).toMatchObject({ input_tokens: fleet.billedReports * usage.input_tokens, output_tokens: fleet.billedReports * usage.output_tokens });
        // Anything after the end is refused.
        const late = decide(def, fleet.state, { type: 'phase_completed', at: fleet.at + 1, phase: def.phases[0]!.name, iteration: 1, attempt: 1, usage, model: 'm' });
        expect(late.accepted).toBe(false);
      }),
      { numRuns: 400 },
    );
  });
});
