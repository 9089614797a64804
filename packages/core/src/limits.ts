/**
 * Limits on what a caller may put into a run's state: external event data and variables. A value
 * past them is refused before anything is written, because a value nested too deep overflows the
 * stack of every later decision, copy and Lua decode of the run (the run could no longer move).
 */
import { FleetError } from './errors.js';

/** Deepest nesting of objects and arrays allowed in event data, levels. */
export const MAX_EVENT_DATA_DEPTH = 32;
/** Largest event data allowed, bytes of JSON. */
export const MAX_EVENT_DATA_BYTES = 64 * 1024;
/** Most variables a run may have. */
export const MAX_VARIABLES = 100;
/** Largest variable value allowed, bytes (UTF-8). */
export const MAX_VARIABLE_BYTES = 16 * 1024;
/** Largest total of variable names and values, bytes (UTF-8). */
export const MAX_VARIABLES_TOTAL_BYTES = 64 * 1024;
/**
 * Largest workflow document once parsed, bytes of JSON: YAML aliases are resolved by copying, so a
 * small file can expand to a large definition (100 aliases of a 100 KB anchor are 10 MB).
 */
export const MAX_WORKFLOW_BYTES = 1024 * 1024;

/**
 * The nesting depth of a JSON value (a scalar is 0, `{}` is 1), counted without recursion and
 * stopping as soon as it passes `limit`.
 */
export function jsonDepth(value: unknown, limit = Number.POSITIVE_INFINITY): number {
  let deepest = 0;
  const stack: Array<{ v: unknown; d: number }> = [{ v: value, d: 0 }];
  while (stack.length > 0) {
    const { v, d } = stack.pop() as { v: unknown; d: number };
    if (v === null || typeof v !== 'object') continue;
    const depth = d + 1;
    if (depth > deepest) deepest = depth;
    if (deepest > limit) return deepest;
    for (const child of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) stack.push({ v: child, d: depth });
  }
  return deepest;
}

/**
 * Refuse external event data nested deeper than {@link MAX_EVENT_DATA_DEPTH} levels or larger than
 * {@link MAX_EVENT_DATA_BYTES} bytes of JSON.
 *
 * @param field - how the caller names the value in the error (e.g. `body.data`).
 * @throws FleetError `INVALID_INPUT` naming the field and the limit.
 */
export function validateEventData(data: unknown, field = 'data'): void {
  const depth = jsonDepth(data, MAX_EVENT_DATA_DEPTH);
  if (depth > MAX_EVENT_DATA_DEPTH) {
    throw invalid(field, `${field} is nested deeper than ${MAX_EVENT_DATA_DEPTH} levels (the limit for event data); send flatter data`);
  }
  const bytes = Buffer.byteLength(JSON.stringify(data ?? null), 'utf8');
  if (bytes > MAX_EVENT_DATA_BYTES) {
    throw invalid(field, `${field} is ${bytes} bytes of JSON; the limit for event data is ${MAX_EVENT_DATA_BYTES} bytes (64 KiB)`);
  }
}

/**
 * Refuse more than {@link MAX_VARIABLES} variables, a value over {@link MAX_VARIABLE_BYTES} bytes,
 * or names and values over {@link MAX_VARIABLES_TOTAL_BYTES} bytes in all.
 *
 * @throws FleetError `INVALID_INPUT` naming the variable or the limit.
 */
export function validateVariableLimits(variables: Record<string, unknown>, field = 'variables'): void {
  const entries = Object.entries(variables);
  if (entries.length > MAX_VARIABLES) throw invalid(field, `${field} has ${entries.length} entries; the limit is ${MAX_VARIABLES} variables`);
  let total = 0;
  for (const [name, value] of entries) {
    const bytes = Buffer.byteLength(typeof value === 'string' ? value : JSON.stringify(value ?? null), 'utf8');
    if (bytes > MAX_VARIABLE_BYTES) throw invalid(`${field}.${name}`, `${field}.${name} is ${bytes} bytes; the limit for one variable is ${MAX_VARIABLE_BYTES} bytes (16 KiB)`);
    total += bytes + Buffer.byteLength(name, 'utf8');
  }
  if (total > MAX_VARIABLES_TOTAL_BYTES) throw invalid(field, `${field} are ${total} bytes in all; the limit is ${MAX_VARIABLES_TOTAL_BYTES} bytes (64 KiB)`);
}

function invalid(path: string, message: string): FleetError {
  return new FleetError('INVALID_INPUT', message, { details: { issues: [{ path, message }] } });
}
