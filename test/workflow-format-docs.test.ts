/**
 * The field table of docs/workflow-format.md against the real workflow schema: every field that
 * `WorkflowFileSchema` accepts has a row, and every row names a field it accepts, so the table
 * cannot drift from the format.
 *
 * The paths the table must hold, derived from the zod schema:
 * - every top-level field (`name`, `budget`, …) and every phase field (`phases[].tool`, …);
 * - for a field whose value is an object with fixed fields (`error_handling`, `output`, `budget`,
 *   `concurrency`): each sub-field, as its own row (`error_handling.max_total_retries`) or named in
 *   a code span of the parent's row (`budget` … `{max_tokens, max_cost_usd, on_exceed}` …).
 * Lists of other objects (`step_actions`, `mcp_servers`) and unions (`depends_on`, `condition`) are
 * described on the pages the table links to and need only their own row.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WorkflowFileSchema } from '@agentfleet/core';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';

const page = fileURLToPath(new URL('../docs/workflow-format.md', import.meta.url));

/** The schema under optional, default, nullable, readonly and transform wrappers. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (;;) {
    const def = s.def as { type: string; innerType?: z.ZodType; in?: z.ZodType };
    if (def.innerType && ['optional', 'default', 'nullable', 'readonly', 'prefault', 'catch'].includes(def.type)) s = def.innerType;
    else if (def.type === 'pipe' && def.in) s = def.in;
    else return s;
  }
}

/** The fixed fields of an object schema, or undefined when `schema` is not an object. */
function objectShape(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  const s = unwrap(schema);
  return s.def.type === 'object' ? (s as z.ZodObject).shape : undefined;
}

interface Required {
  /** The row's path: `name`, `phases[].tool`, `output.format`. */
  path: string;
  /** Sub-fields that a row of `path` itself may name instead of rows of their own. */
  subFields: string[];
}

/** Every path the table must document, from the schema. */
function requiredPaths(): Required[] {
  const out: Required[] = [];
  const visit = (shape: Record<string, z.ZodType>, prefix: string) => {
    for (const [key, value] of Object.entries(shape)) {
      const path = `${prefix}${key}`;
      const inner = unwrap(value);
      if (path === 'phases') {
        const element = (inner.def as { element?: z.ZodType }).element;
        const phase = element && objectShape(element);
        if (!phase) throw new Error('phases is no longer a list of objects: update this test');
        visit(phase, 'phases[].');
        continue;
      }
      const sub = objectShape(inner);
      out.push({ path, subFields: sub ? Object.keys(sub) : [] });
    }
  };
  visit(WorkflowFileSchema.shape, '');
  return out;
}

/** The field table: the first column's backticked path → the whole row's text. */
function tableRows(markdown: string): Map<string, string> {
  const start = markdown.indexOf('| field | default | meaning |');
  expect(start, 'docs/workflow-format.md has its "| field | default | meaning |" table').toBeGreaterThan(-1);
  const rows = new Map<string, string>();
  for (const line of markdown.slice(start).split('\n').slice(2)) {
    if (!line.startsWith('|')) break;
    const m = /^\| `([^`]+)` \|/.exec(line);
    if (m) rows.set(m[1] as string, line);
  }
  return rows;
}

describe('docs/workflow-format.md field table', () => {
  const rows = tableRows(readFileSync(page, 'utf8'));

  it('has a row for every field the workflow schema accepts', () => {
    const missing: string[] = [];
    for (const { path, subFields } of requiredPaths()) {
      if (subFields.length === 0) {
        if (!rows.has(path)) missing.push(path);
        continue;
      }
      // The code spans of the parent's row (`{max_tokens, max_cost_usd}` names both).
      const spans = [...(rows.get(path) ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1] as string);
      for (const sub of subFields) {
        const named = spans.some((span) => new RegExp(`(^|[^\\w])${sub}([^\\w]|$)`).test(span));
        if (!rows.has(`${path}.${sub}`) && !named) missing.push(`${path}.${sub}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('names no field the schema does not accept', () => {
    const accepted = new Set(requiredPaths().flatMap(({ path, subFields }) => [path, ...subFields.map((s) => `${path}.${s}`)]));
    expect([...rows.keys()].filter((path) => !accepted.has(path))).toEqual([]);
  });
});
