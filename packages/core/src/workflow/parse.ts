/**
 * Workflow text to a plain value: YAML or JSON, with errors that name the line and column, and
 * bounds on aliases, expansion and nesting. Reading files is ../registry/workflow-files.ts.
 */
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { FleetError } from '../errors.js';
import { MAX_WORKFLOW_BYTES } from '../limits.js';

/** Most alias uses a YAML workflow may hold. */
const MAX_YAML_ALIASES = 99;

/**
 * Parse workflow text. JSON is tried when the text starts with `{`, YAML otherwise (YAML 1.2 is a
 * superset of JSON, so either parser accepts JSON).
 *
 * @param source - where the text came from, for error messages (a path or `request body`).
 * @throws FleetError `INVALID_WORKFLOW` with the line and column of a syntax error; naming the limit
 *   when the text uses more than 99 YAML aliases or expands past {@link MAX_WORKFLOW_BYTES} bytes.
 */
export function parseWorkflowText(text: string, source: string): unknown {
  // A .json file is JSON: YAML would accept what JSON refuses (trailing commas, comments, bare words).
  if (/\.json$/i.test(source)) return parseStrictJson(text, source);
  let value: unknown;
  try {
    // At most 99 alias uses (the yaml library refuses its `maxAliasCount`-th: its bound on
    // exponential expansion); the size they expand to is bounded below.
    value = parseYaml(text, { prettyErrors: true, uniqueKeys: true, maxAliasCount: MAX_YAML_ALIASES + 1 });
  } catch (err) {
    if (err instanceof ReferenceError && err.message.startsWith('Excessive alias count')) {
      throw new FleetError('INVALID_WORKFLOW', `${source}: uses more than ${MAX_YAML_ALIASES} YAML aliases; the limit for a workflow is ${MAX_YAML_ALIASES} alias uses: use fewer aliases`, { cause: err });
    }
    const where = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}, column ${err.linePos[0].col}` : '';
    if (err instanceof RangeError || (err instanceof Error && err.message.includes('Maximum call stack size exceeded'))) {
      // Hostile input: nesting deep enough to exhaust the parser's stack.
      throw new FleetError('INVALID_WORKFLOW', `${source}: nested too deeply to parse; a workflow needs only a few levels of nesting`, { cause: err });
    }
    const lines = err instanceof Error ? err.message.split('\n') : [String(err)];
    // The first line repeats the position; the rest is the yaml library's excerpt: the offending line and a caret under it.
    const message = (lines[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
    const excerpt = lines.slice(1).filter((l) => l.trim() !== '');
    throw new FleetError('INVALID_WORKFLOW', `${source}: not valid YAML${where}: ${message}${excerpt.length > 0 ? `\n${excerpt.join('\n')}` : ''}`, { cause: err });
  }
  const expanded = Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
  if (expanded > MAX_WORKFLOW_BYTES) {
    throw new FleetError(
      'INVALID_WORKFLOW',
      `${source}: expands to ${expanded} bytes of JSON once its YAML aliases are resolved (${Buffer.byteLength(text, 'utf8')} bytes of text); the limit for a workflow is ${MAX_WORKFLOW_BYTES} bytes (1 MiB): use fewer or smaller aliases`,
      { details: { issues: [{ path: source, message: `expands to ${expanded} bytes; the limit is ${MAX_WORKFLOW_BYTES} bytes` }] } },
    );
  }
  return value;
}

/**
 * `JSON.parse` with an error that names the line and column and shows the line with a caret.
 *
 * @throws FleetError `INVALID_WORKFLOW`.
 */
function parseStrictJson(text: string, source: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (err) {
    const message = (err as Error).message;
    const at = Number(/position (\d+)/.exec(message)?.[1] ?? NaN);
    // Without a position in the message (V8 omits it for some errors), the first unexpected token is looked for.
    const token = /Unexpected token '(.)'/.exec(message)?.[1];
    const offset = Number.isFinite(at) ? at : token !== undefined ? strayTokenOffset(text, token) : -1;
    if (offset < 0) throw new FleetError('INVALID_WORKFLOW', `${source}: not valid JSON: ${message}`, { cause: err });
    const before = text.slice(0, offset).split('\n');
    const line = before.length;
    const col = (before[before.length - 1] ?? '').length + 1;
    const lineText = text.split('\n')[line - 1] ?? '';
    throw new FleetError('INVALID_WORKFLOW', `${source}: not valid JSON at line ${line}, column ${col}: ${message.split(', "')[0]} (a .json file is strict JSON: no trailing commas or comments)\n${lineText}\n${' '.repeat(col - 1)}^`, {
      cause: err,
    });
  }
  if (depthOf(value) > MAX_JSON_DEPTH) throw new FleetError('INVALID_WORKFLOW', `${source}: nested too deeply to parse; a workflow needs only a few levels of nesting`);
  return value;
}

/** Deeper than this, a JSON workflow is refused as YAML's parser refuses one (no workflow needs it). */
const MAX_JSON_DEPTH = 64;

/** How deeply `value` nests lists and mappings (iterative: no stack to exhaust); stops past the limit. */
function depthOf(value: unknown): number {
  let deepest = 0;
  const todo: Array<[unknown, number]> = [[value, 1]];
  for (let item = todo.pop(); item; item = todo.pop()) {
    const [v, d] = item;
    if (v === null || typeof v !== 'object') continue;
    deepest = Math.max(deepest, d);
    if (deepest > MAX_JSON_DEPTH) return deepest;
    for (const child of Object.values(v)) todo.push([child, d + 1]);
  }
  return deepest;
}

/** Offset of the first `token` outside strings that JSON does not allow there (after `,` or `[`/`{` a closing bracket). */
function strayTokenOffset(text: string, token: string): number {
  let inString = false;
  let lastSignificant = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    if (/\s/.test(c)) continue;
    if (c === token && (lastSignificant === ',' || !'}]'.includes(c))) return i;
    lastSignificant = c;
  }
  return -1;
}
