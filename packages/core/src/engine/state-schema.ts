/**
 * The `state_schema` check: when a run would complete, its final context (phase name → output) must
 * satisfy the workflow's JSON Schema. A violation turns the completion into a failure whose error
 * names the path (`/review/verdict: must be equal to one of the allowed values`).
 *
 * Pure: it rewrites the scheduler's decision before the store commits it, so the run never shows as
 * `completed` and then flips.
 */
import { FleetError } from '../errors.js';
import type { RunMeta } from '../result.js';
import type { Decision } from '../scheduler/types.js';
import { compileStateSchema, stateSchemaIssues } from '../workflow/template-fields.js';
import type { ValidateFunction } from 'ajv';

/** Name used in the run's `errors` for a state-schema violation (it belongs to no phase). */
export const STATE_SCHEMA_ERROR_PHASE = 'state_schema';

/** Compiled validators by schema text (run meta is parsed afresh on every event). */
const compiled = new Map<string, ValidateFunction>();
const MAX_COMPILED = 200;

function validatorFor(schema: Record<string, unknown>): ValidateFunction {
  const key = JSON.stringify(schema);
  let v = compiled.get(key);
  if (!v) {
    v = compileStateSchema(schema);
    if (compiled.size >= MAX_COMPILED) compiled.clear();
    compiled.set(key, v);
  }
  return v;
}

/**
 * Check a decision that completes the run against the workflow's `state_schema`.
 *
 * @param outputs - the shared context's phase outputs, including the output of the event being applied
 *   (the manager loads them for workflows with a `state_schema`).
 * @returns the decision unchanged when it does not complete the run, the workflow has no
 *   `state_schema`, or the context satisfies it; otherwise the same decision with the run `failed`,
 *   a `STATE_SCHEMA_VIOLATION` error in `errors` and the `run_finished` event's status `failed`.
 */
export function enforceStateSchema(meta: RunMeta, decision: Decision, outputs: Record<string, unknown>): Decision {
  const schema = meta.workflow.stateSchema;
  if (!schema || !decision.accepted) return decision;
  if (!decision.actions.some((a) => a.type === 'finish_run' && a.status === 'completed')) return decision;
  const validate = validatorFor(schema);
  // The context as it will be stored: the loaded outputs plus any the scheduler wrote (approvals).
  if (validate({ ...outputs, ...decision.outputs })) return decision;
  const issues = stateSchemaIssues(validate.errors);
  const error = new FleetError(
    'STATE_SCHEMA_VIOLATION',
    `the final context does not match state_schema: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    { details: { issues } },
  ).toJSON();
  return {
    ...decision,
    state: { ...decision.state, status: 'failed', errors: [...decision.state.errors, { phase: STATE_SCHEMA_ERROR_PHASE, error }] },
    actions: [
      ...decision.actions.map((a) => (a.type === 'finish_run' ? { ...a, status: 'failed' as const } : a)),
      // A failed run starts its fallback, whatever failed it.
      ...(meta.workflow.errorHandling.fallbackWorkflow ? [{ type: 'start_fallback' as const, workflow: meta.workflow.errorHandling.fallbackWorkflow }] : []),
    ],
    events: decision.events.map((e) => (e.type === 'run_finished' ? { ...e, status: 'failed' as const } : e)),
  };
}
