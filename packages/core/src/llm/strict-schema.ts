/**
 * Makes a JSON Schema fit for structured outputs (constrained decoding), where the provider compiles
 * the schema into a grammar and only a subset of JSON Schema is accepted:
 *
 * - every object gets `additionalProperties: false` (required by both Anthropic and OpenAI);
 * - keywords a grammar cannot express are removed: string lengths and patterns, numeric bounds,
 *   `maxItems`, `minItems` above 1 (Anthropic accepts 0 and 1), `uniqueItems`, property counts,
 *   `not`, `if`/`then`/`else`, unknown `format`s and any keyword outside the supported set;
 * - `oneOf` becomes `anyOf` (every branch of a role's union is tried by the validator anyway).
 *
 * The removed constraints are not lost: the caller still validates every reply against the role's
 * zod schema (or, for custom roles, the original JSON Schema) and sends the problems back for a
 * repair. A schema that cannot be made compatible (a map with free keys, a tuple, a recursive
 * `$ref`, and for OpenAI an optional property) is reported as such, and the provider sends it
 * without `strict`.
 *
 * @see https://platform.claude.com/docs/en/build-with-claude/structured-outputs#json-schema-limitations
 * @see https://platform.openai.com/docs/guides/structured-outputs#supported-schemas
 */

/** Whose structured-output rules to follow: OpenAI also requires every property to be `required`. */
export type StrictSchemaTarget = 'anthropic' | 'openai';

/** What {@link strictJsonSchema} made of a schema. */
export interface StrictSchemaResult {
  /** The compatible schema (a new object; the input is not changed). */
  schema: Record<string, unknown>;
  /** Whether `schema` can be sent with `strict: true` to the target. */
  compatible: boolean;
  /** Why not, naming the place in the schema (a JSON Pointer), when `compatible` is false. */
  reason?: string | undefined;
  /** The keywords removed, as `<JSON Pointer>/<keyword>`, e.g. `/properties/path/minLength`. */
  removed: string[];
}

/** Keywords kept as they are (their values are walked where they hold schemas). */
const KEPT = new Set([
  'type', 'properties', 'required', 'items', 'enum', 'const', 'anyOf', 'allOf', '$ref', '$defs', 'definitions',
  'description', 'title', 'default', 'additionalProperties', 'format', 'minItems', 'nullable', 'examples',
]);
/** Structural keywords that no grammar-friendly rewrite can keep: the schema is then not compatible. */
const INCOMPATIBLE = new Set(['prefixItems', 'patternProperties', 'dependentSchemas', 'unevaluatedProperties', 'unevaluatedItems']);
/** String formats both providers accept in strict schemas. */
const FORMATS = new Set(['date-time', 'time', 'date', 'duration', 'email', 'hostname', 'uri', 'ipv4', 'ipv6', 'uuid']);

const cache: Record<StrictSchemaTarget, WeakMap<object, StrictSchemaResult>> = { anthropic: new WeakMap(), openai: new WeakMap() };

/**
 * The structured-output compatible form of `schema` for `target`; remembered per schema object,
 * so call it with the same (unchanged) object on every request.
 *
 * @param schema - a JSON Schema (draft 2020-12) whose root is an object schema, as a role's output.
 * @returns the rewritten schema, whether it is compatible (and why not), and what was removed.
 *
 * @example
 * strictJsonSchema({ type: 'object', properties: { path: { type: 'string', minLength: 1 } }, required: ['path'] }, 'anthropic')
 * // → { schema: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'], additionalProperties: false },
 * //     compatible: true, removed: ['/properties/path/minLength'] }
 */
export function strictJsonSchema(schema: Record<string, unknown>, target: StrictSchemaTarget): StrictSchemaResult {
  const known = cache[target].get(schema);
  if (known) return known;
  const state: WalkState = { target, removed: [], reason: undefined };
  const out = walk(schema, '', state);
  if (state.reason === undefined && out['type'] !== 'object') state.reason = '(root): the root must be an object schema';
  const result: StrictSchemaResult = { schema: out, compatible: state.reason === undefined, reason: state.reason, removed: state.removed };
  cache[target].set(schema, result);
  return result;
}

interface WalkState {
  target: StrictSchemaTarget;
  removed: string[];
  reason: string | undefined;
}

function incompatible(state: WalkState, where: string, why: string): void {
  state.reason ??= `${where || '(root)'}: ${why}`;
}

function walk(node: Record<string, unknown>, at: string, state: WalkState): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    const here = `${at}/${key}`;
    if (INCOMPATIBLE.has(key)) {
      incompatible(state, at, `"${key}" cannot be expressed in a strict schema`);
      continue;
    }
    if (!KEPT.has(key) && key !== 'oneOf') {
      state.removed.push(here);
      continue;
    }
    switch (key) {
      case 'properties':
      case '$defs':
      case 'definitions':
        out[key] = mapValues(value, here, state);
        break;
      case 'items':
        out[key] = isRecord(value) ? walk(value, here, state) : value;
        break;
      case 'anyOf':
      case 'allOf':
      case 'oneOf':
        out[key === 'oneOf' ? 'anyOf' : key] = Array.isArray(value)
          ? (value as unknown[]).map((branch, i): unknown => (isRecord(branch) ? walk(branch, `${here}/${i}`, state) : branch))
          : value;
        break;
      case 'format':
        if (typeof value === 'string' && FORMATS.has(value)) out[key] = value;
        else state.removed.push(here);
        break;
      case 'minItems':
        if (state.target === 'anthropic' && (value === 0 || value === 1)) out[key] = value;
        else state.removed.push(here);
        break;
      case '$ref':
        if (value === '#' || (typeof value === 'string' && !value.startsWith('#/'))) incompatible(state, at, `$ref "${String(value)}" is recursive or external`);
        out[key] = value;
        break;
      case 'additionalProperties':
        // Set below for every object; a schema here means a map with free keys.
        if (value !== false && !(value === true && node['properties'] !== undefined)) {
          if (node['properties'] === undefined) incompatible(state, at, 'a map with free keys (additionalProperties) cannot be strict');
        }
        break;
      default:
        out[key] = value;
    }
  }
  const isObject = node['type'] === 'object' || (Array.isArray(node['type']) && node['type'].includes('object')) || node['properties'] !== undefined;
  if (isObject) {
    out['additionalProperties'] = false;
    out['properties'] ??= {};
    if (state.target === 'openai') {
      const required = new Set<unknown>(Array.isArray(node['required']) ? (node['required'] as unknown[]) : []);
      const optional = Object.keys(out['properties'] as Record<string, unknown>).filter((name) => !required.has(name));
      if (optional.length > 0) incompatible(state, at, `OpenAI strict schemas make every property required; "${optional.join('", "')}" is optional`);
    }
  }
  return out;
}

function mapValues(value: unknown, at: string, state: WalkState): unknown {
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [name, child] of Object.entries(value)) out[name] = isRecord(child) ? walk(child, `${at}/${escapePointer(name)}`, state) : child;
  return out;
}

function escapePointer(name: string): string {
  return name.replaceAll('~', '~0').replaceAll('/', '~1');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
