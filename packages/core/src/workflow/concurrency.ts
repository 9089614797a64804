/**
 * Concurrency keys and run priority, as a workflow or a request sets them:
 *
 * ```yaml
 * concurrency: { key: "{{tenant}}", limit: 2 }   # at most 2 runs of one tenant active at once
 * priority: 8                                    # 1 (least urgent) .. 10 (most urgent), default 5
 * ```
 *
 * The key is a template over the run's variables (and `{{requirements}}`), rendered once when the run
 * is submitted. Runs beyond the key's `limit` wait with status `queued` and start in submission order
 * as the key's runs finish (see ../engine/concurrency.ts). Phase jobs of different keys share each
 * role queue fairly, and `priority` orders them across keys (see ../engine/fair-priority.ts).
 * The user documentation is docs/concurrency-and-priority.md.
 */
import { z } from 'zod';
import { FleetError } from '../errors.js';
import { renderTemplate } from './template.js';

/** Most runs of one key that may be active at once (a sanity bound, not a tuning knob). */
export const MAX_CONCURRENCY_LIMIT = 100_000;
/** Longest concurrency key after rendering, characters: it becomes part of Redis key names. */
export const MAX_CONCURRENCY_KEY_LENGTH = 256;
/** The priority of a run that sets none. */
export const DEFAULT_RUN_PRIORITY = 5;
export const MIN_RUN_PRIORITY = 1;
export const MAX_RUN_PRIORITY = 10;

/** `concurrency` as written in a workflow file or a request body. */
export const ConcurrencySchema = z.strictObject({
  key: z
    .string({ error: 'concurrency.key must be a string, e.g. "{{tenant}}"' })
    .min(1, 'concurrency.key must not be empty; e.g. "{{tenant}}"')
    .max(MAX_CONCURRENCY_KEY_LENGTH * 4, `concurrency.key is at most ${MAX_CONCURRENCY_KEY_LENGTH * 4} characters before rendering`),
  limit: z
    .number({ error: 'concurrency.limit must be a whole number of runs' })
    .int('concurrency.limit must be a whole number of runs')
    .min(1, 'concurrency.limit must be at least 1 (leave it out for no limit)')
    .max(MAX_CONCURRENCY_LIMIT, `concurrency.limit is at most ${MAX_CONCURRENCY_LIMIT}`)
    .optional(),
});

/** `priority` as written in a workflow file or a request body: 1 (least urgent) to 10 (most urgent). */
export const PrioritySchema = z
  .number({ error: 'priority must be a whole number from 1 (least urgent) to 10 (most urgent)' })
  .int('priority must be a whole number from 1 (least urgent) to 10 (most urgent)')
  .min(MIN_RUN_PRIORITY, 'priority must be at least 1 (least urgent)')
  .max(MAX_RUN_PRIORITY, 'priority must be at most 10 (most urgent)');

/**
 * A concurrency setting: `key` a template (in a definition) or its rendered value (in a run's meta);
 * `limit` the most runs of the key active at once, absent for no limit (the key then only groups
 * phase jobs for fair sharing).
 */
export interface ConcurrencySpec {
  key: string;
  limit?: number | undefined;
}

/**
 * Render a concurrency key for one run.
 *
 * @param spec - the request's setting, else the workflow's.
 * @returns the key with its template filled in, and the limit.
 * @throws FleetError `INVALID_INPUT` when the rendered key is empty (a variable it names is missing or
 *   empty), longer than {@link MAX_CONCURRENCY_KEY_LENGTH}, or holds control characters.
 */
export function resolveConcurrency(spec: ConcurrencySpec, variables: Record<string, string>, requirements: string): ConcurrencySpec {
  const key = renderTemplate(spec.key, { requirements, variables, outputs: {}, errors: [] }).trim();
  if (key === '') {
    const names = [...spec.key.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]);
    const hint = names.length > 0 ? `; set ${names.map((n) => `the variable "${n}" (--var ${n}=...)`).join(' and ')}` : '';
    throw new FleetError('INVALID_INPUT', `concurrency.key "${spec.key}" renders to an empty key for this run${hint}`);
  }
  if (key.length > MAX_CONCURRENCY_KEY_LENGTH) {
    throw new FleetError('INVALID_INPUT', `concurrency.key renders to ${key.length} characters; the limit is ${MAX_CONCURRENCY_KEY_LENGTH}`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001F\u007F]/.test(key)) throw new FleetError('INVALID_INPUT', 'concurrency.key renders to text with control characters; use plain text');
  return { key, ...(spec.limit !== undefined ? { limit: spec.limit } : {}) };
}

/**
 * Check a run priority given outside zod (the client's `submit`).
 * @throws FleetError `INVALID_INPUT` unless it is a whole number from 1 to 10.
 */
export function validatePriority(priority: unknown): asserts priority is number {
  const parsed = PrioritySchema.safeParse(priority);
  if (!parsed.success) throw new FleetError('INVALID_INPUT', parsed.error.issues[0]?.message ?? 'priority must be a whole number from 1 to 10');
}
