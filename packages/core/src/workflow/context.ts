/**
 * The view of a run's shared context that conditions and templates read: the requirements, the
 * variables, every phase's latest output, and the errors so far.
 */
export interface TemplateContext {
  requirements: string;
  variables: Record<string, string>;
  /** Phase name → latest output. */
  outputs: Record<string, unknown>;
  errors: Array<{ phase: string; error: { code: string; message: string } }>;
}

/** A parsed `{{path}}` reference: `plan.tasks[0].title` → head `plan`, rest `['tasks', 0, 'title']`. */
export interface PathRef {
  head: string;
  rest: Array<string | number>;
}

const SEGMENT = /^([A-Za-z_][A-Za-z0-9_-]*)((?:\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\])*)$/;

/** Parse a template path; undefined when it is not one. */
export function parsePath(path: string): PathRef | undefined {
  const m = SEGMENT.exec(path.trim());
  if (!m) return undefined;
  const rest: Array<string | number> = [];
  for (const part of (m[2] ?? '').matchAll(/\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]/g)) {
    rest.push(part[1] !== undefined ? part[1] : Number(part[2]));
  }
  return { head: m[1] as string, rest };
}

/**
 * Resolve a path against the context. The head is, in order: `requirements`, `errors`, a variable,
 * a phase's output. Returns undefined when anything along the way is missing.
 */
export function resolvePath(ref: PathRef, ctx: TemplateContext): unknown {
  let value: unknown;
  if (ref.head === 'requirements') value = ctx.requirements;
  else if (ref.head === 'errors') value = ctx.errors;
  else if (Object.hasOwn(ctx.variables, ref.head)) value = ctx.variables[ref.head];
  else if (Object.hasOwn(ctx.outputs, ref.head)) value = ctx.outputs[ref.head];
  else return undefined;
  for (const key of ref.rest) {
    if (value === null || typeof value !== 'object') return undefined;
    if (typeof key === 'number') {
      if (!Array.isArray(value)) return undefined;
      value = value[key];
    } else {
      if (!Object.hasOwn(value, key)) return undefined;
      value = (value as Record<string, unknown>)[key];
    }
  }
  return value;
}

/** Every `{{ … }}` in a text, with its inner path text. */
export function templateRefs(text: string): string[] {
  return [...text.matchAll(/\{\{\s*([^{}]*?)\s*\}\}/g)].map((m) => m[1] ?? '');
}
