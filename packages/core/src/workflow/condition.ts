/**
 * Phase conditions: an expression over the context, or a structured test.
 *
 * Expressions: `{{review.verdict}} == 'changes_requested'`, `and` / `or` / `not` (also `&&`, `||`,
 * `!`), `==`, `!=`, `<`, `<=`, `>`, `>=`, parentheses, numbers, 'single' or "double" quoted strings,
 * `true`/`false`/`True`/`False`, `null`/`None`. Parsed with jsep into an AST and evaluated by the
 * small interpreter below: never `eval`, no property access, no calls.
 *
 * Structured tests (the format of the multi-agent orchestrator users come from):
 * `{type: result_contains, phase, value}` — the phase's output, as JSON text, contains `value`;
 * `{type: error_count, max_errors}` — fewer than `max_errors` errors so far.
 */
import jsep from 'jsep';
import { parsePath, resolvePath, templateRefs, type PathRef, type TemplateContext } from './context.js';

jsep.addBinaryOp('and', 2);
jsep.addBinaryOp('or', 1);
jsep.addUnaryOp('not');
jsep.addLiteral('True', true);
jsep.addLiteral('False', false);
jsep.addLiteral('None', null);
jsep.removeBinaryOp('|');
jsep.removeBinaryOp('&');
jsep.removeBinaryOp('^');

/**
 * A parsed expression: a jsep syntax tree, opaque outside this module (only the evaluator reads it).
 * Declared here rather than as `jsep.Expression` so the published typings do not import jsep's, which
 * do not type-check in an ES-module consumer with `skipLibCheck: false`.
 */
export interface ConditionAst {
  readonly type: string;
}

export type Condition =
  | { kind: 'expression'; source: string; ast: ConditionAst; refs: PathRef[] }
  | { kind: 'result_contains'; phase: string; value: string }
  | { kind: 'error_count'; maxErrors: number };

/** Thrown by {@link parseCondition} with a message fit for a validation issue. */
export class ConditionSyntaxError extends Error {
  override readonly name = 'ConditionSyntaxError';
}

const PLACEHOLDER = '__ref';

/**
 * Parse an expression: each `{{path}}` becomes a placeholder identifier, then jsep parses the rest.
 *
 * @throws ConditionSyntaxError naming the problem (bad path, syntax error, unsupported construct).
 */
export function parseExpression(source: string): Extract<Condition, { kind: 'expression' }> {
  const refs: PathRef[] = [];
  let error: string | undefined;
  const replaced = source.replace(/\{\{\s*([^{}]*?)\s*\}\}/g, (_whole, inner: string) => {
    const ref = parsePath(inner);
    if (!ref) error ??= `"{{${inner}}}" is not a path like {{phase.field}} or {{plan.tasks[0].title}}`;
    refs.push(ref ?? { head: '', rest: [] });
    return `${PLACEHOLDER}${refs.length - 1}`;
  });
  if (error) throw new ConditionSyntaxError(error);
  let ast: jsep.Expression;
  try {
    ast = jsep(replaced);
  } catch (err) {
    throw new ConditionSyntaxError(`cannot parse condition "${source}": ${(err as Error).message}`);
  }
  checkSupported(ast, source);
  return { kind: 'expression', source, ast, refs };
}

function checkSupported(node: jsep.Expression, source: string): void {
  switch (node.type) {
    case 'Literal':
      return;
    case 'Identifier': {
      const name = (node as jsep.Identifier).name;
      if (name.startsWith(PLACEHOLDER) || name === 'true' || name === 'false' || name === 'null') return;
      throw new ConditionSyntaxError(`condition "${source}": bare name "${name}"; wrap context paths in braces ({{${name}}}) and quote strings ('${name}')`);
    }
    case 'BinaryExpression':
      checkSupported(node.left as jsep.Expression, source);
      checkSupported(node.right as jsep.Expression, source);
      return;
    case 'UnaryExpression': {
      const op = (node as jsep.UnaryExpression).operator;
      if (!['not', '!', '-'].includes(op)) throw new ConditionSyntaxError(`condition "${source}": operator ${op} is not supported`);
      checkSupported(node.argument as jsep.Expression, source);
      return;
    }
    case 'MemberExpression':
      throw new ConditionSyntaxError(`condition "${source}": paths into the context go in braces, e.g. {{review.verdict}} == 'approve'`);
    default:
      throw new ConditionSyntaxError(`condition "${source}": ${node.type} is not supported (use comparisons, and/or/not, literals and {{paths}})`);
  }
}

/** Evaluate a condition against the context. Never throws for a parsed condition. */
export function evaluateCondition(condition: Condition, ctx: TemplateContext): boolean {
  switch (condition.kind) {
    case 'result_contains': {
      const output = ctx.outputs[condition.phase];
      if (output === undefined) return false;
      return (typeof output === 'string' ? output : JSON.stringify(output)).includes(condition.value);
    }
    case 'error_count':
      return ctx.errors.length < condition.maxErrors;
    case 'expression':
      return truthy(evaluate(condition.ast as jsep.Expression, condition.refs, ctx));
  }
}

function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (v && typeof v === 'object') return Object.keys(v).length > 0;
  return Boolean(v);
}

function evaluate(node: jsep.Expression, refs: PathRef[], ctx: TemplateContext): unknown {
  switch (node.type) {
    case 'Literal':
      return node.value;
    case 'Identifier': {
      const name = (node as jsep.Identifier).name;
      if (name === 'true') return true;
      if (name === 'false') return false;
      if (name === 'null') return null;
      const ref = refs[Number(name.slice(PLACEHOLDER.length))];
      return ref ? resolvePath(ref, ctx) : undefined;
    }
    case 'UnaryExpression': {
      const v = evaluate(node.argument as jsep.Expression, refs, ctx);
      return node.operator === '-' ? -Number(v) : !truthy(v);
    }
    case 'BinaryExpression': {
      const op = (node as jsep.BinaryExpression).operator;
      if (op === 'and' || op === '&&') return truthy(evaluate(node.left as jsep.Expression, refs, ctx)) && truthy(evaluate(node.right as jsep.Expression, refs, ctx));
      if (op === 'or' || op === '||') return truthy(evaluate(node.left as jsep.Expression, refs, ctx)) || truthy(evaluate(node.right as jsep.Expression, refs, ctx));
      const l = evaluate(node.left as jsep.Expression, refs, ctx);
      const r = evaluate(node.right as jsep.Expression, refs, ctx);
      return compare(op, l, r);
    }
    default:
      return undefined;
  }
}

function compare(op: string, l: unknown, r: unknown): boolean {
  switch (op) {
    case '==':
    case '===':
      return looseEqual(l, r);
    case '!=':
    case '!==':
      return !looseEqual(l, r);
    case '<':
    case '<=':
    case '>':
    case '>=': {
      const [a, b] = typeof l === 'number' || typeof r === 'number' ? [Number(l), Number(r)] : [String(l), String(r)];
      if (op === '<') return a < b;
      if (op === '<=') return a <= b;
      if (op === '>') return a > b;
      return a >= b;
    }
    default:
      return false;
  }
}

/** Equality across the JSON types; a number equals its decimal string ("3" == 3). */
function looseEqual(l: unknown, r: unknown): boolean {
  if (l === undefined) l = null;
  if (r === undefined) r = null;
  if (typeof l === 'number' && typeof r === 'string') return r.trim() !== '' && l === Number(r);
  if (typeof r === 'number' && typeof l === 'string') return l.trim() !== '' && r === Number(l);
  if (typeof l === 'object' || typeof r === 'object') return JSON.stringify(l) === JSON.stringify(r);
  return l === r;
}

/** The `{{path}}` references of any templated text, parsed (invalid ones left out). */
export function pathsIn(text: string): PathRef[] {
  return templateRefs(text)
    .map(parsePath)
    .filter((r): r is PathRef => r !== undefined);
}
