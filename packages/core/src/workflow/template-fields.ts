/**
 * The workflow-template fields: what a workflow posted to the template registry may carry
 * besides its phases.
 *
 * - `category`, `tags`: for listing and search.
 * - `guidelines`: instructions every agent of the workflow receives (in its system prompt).
 * - `state_schema`: a JSON Schema (draft-07, checked with Ajv) that the run's final context must
 *   satisfy; the context is the object of phase outputs keyed by phase name. A violation fails the
 *   run and names the path.
 * - `end_action_type` / `end_action_target`: what happens after the run ends: `api_call` (POST the
 *   result to the target URL, signed), `workflow` (start the target template), `tool_call` (enqueue
 *   the result on the `tool-<target>` queue), `none`.
 *
 * The zod shapes are spread into {@link WorkflowFileSchema}; {@link checkTemplateFields} adds the
 * checks zod cannot express; {@link compileTemplateFields} maps them onto the compiled definition.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { z } from 'zod';
import type { ValidationIssue } from '../errors.js';
import { NAME_PATTERN } from './names.js';

export const END_ACTION_TYPES = ['api_call', 'workflow', 'tool_call', 'none'] as const;
export type EndActionType = (typeof END_ACTION_TYPES)[number];

/** A compiled end action. `target` is a URL (`api_call`), a template name (`workflow`) or a tool role (`tool_call`). */
export interface EndActionSpec {
  type: EndActionType;
  target: string | undefined;
}

/** The template fields of the compiled {@link WorkflowDefinition}. */
export interface TemplateFields {
  category?: string;
  tags?: string[];
  /** Instructions every agent of the workflow receives. */
  guidelines?: string;
  /** JSON Schema the final context (phase name → output) must satisfy. */
  stateSchema?: Record<string, unknown>;
  endAction?: EndActionSpec;
}

/** zod shapes of the template fields, spread into the workflow file schema. */
export const TEMPLATE_FIELD_SHAPES = {
  category: z.string().min(1).max(64).optional(),
  tags: z.array(z.string().min(1).max(64)).max(32, 'at most 32 tags').default([]),
  guidelines: z.string().max(65_536, 'guidelines are at most 64 KiB').optional(),
  state_schema: z.record(z.string(), z.unknown(), { error: 'state_schema must be a JSON Schema object' }).optional(),
  end_action_type: z.enum(END_ACTION_TYPES, { error: `end_action_type must be one of: ${END_ACTION_TYPES.join(', ')}` }).default('none'),
  end_action_target: z.string().min(1).max(2048).optional(),
};

/**
 * The parsed template fields of a workflow file, with the workflow's `name` (an end action may not
 * start its own workflow). A parsed `WorkflowFile` is one.
 */
export type TemplateFieldValues = z.output<z.ZodObject<typeof TEMPLATE_FIELD_SHAPES>> & { name: string };

/** One Ajv instance for every state schema (draft-07; unknown keywords are errors, so typos show). */
const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, strictTuples: false, strictRequired: false });

/** Validators by schema text: Ajv keeps every schema it compiles, so each distinct one is compiled once. */
const validators = new Map<string, ValidateFunction>();
const MAX_VALIDATORS = 500;

/**
 * Compile a state schema (once per distinct schema text; a schema's own `$id` is ignored so compiling
 * the same schema again never clashes).
 *
 * @throws Error with Ajv's message when the schema is not a valid JSON Schema.
 */
export function compileStateSchema(schema: Record<string, unknown>): ValidateFunction {
  const { $id: _id, ...rest } = schema;
  const key = JSON.stringify(rest);
  let v = validators.get(key);
  if (!v) {
    if (validators.size >= MAX_VALIDATORS) {
      for (const old of validators.values()) ajv.removeSchema(old.schema);
      validators.clear();
    }
    v = ajv.compile(rest);
    validators.set(key, v);
  }
  return v;
}

/** Ajv errors as `{path, message}`, the path a JSON Pointer into the context (`/review/verdict`). */
export function stateSchemaIssues(errors: readonly ErrorObject[] | null | undefined): ValidationIssue[] {
  return (errors ?? []).map((e) => {
    let path = e.instancePath || '/';
    if (e.keyword === 'required' && typeof e.params.missingProperty === 'string') {
      path = `${e.instancePath}/${e.params.missingProperty}`;
    }
    return { path, message: e.message ?? e.keyword };
  });
}

/**
 * Check the template fields of a parsed workflow file: a valid JSON Schema, and an end action whose
 * target fits its type (required unless `none`; an http(s) URL for `api_call`; a name otherwise).
 */
export function checkTemplateFields(file: TemplateFieldValues): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  if (file.state_schema) {
    try {
      compileStateSchema(file.state_schema);
    } catch (err) {
      issues.push({ path: 'state_schema', message: `not a valid JSON Schema (draft-07): ${(err as Error).message}` });
    }
  }
  const type = file.end_action_type;
  const target = file.end_action_target;
  if (type === 'none') {
    if (target !== undefined) issues.push({ path: 'end_action_target', message: 'end_action_type is "none"; remove end_action_target or set end_action_type' });
  } else if (target === undefined) {
    issues.push({ path: 'end_action_target', message: `end_action_type "${type}" needs end_action_target (${targetHint(type)})` });
  } else if (type === 'api_call') {
    let url: URL | undefined;
    try {
      url = new URL(target);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      issues.push({ path: 'end_action_target', message: `"${target}" is not an http(s) URL; api_call posts the result to a URL` });
    }
  } else if (!NAME_PATTERN.test(target)) {
    issues.push({ path: 'end_action_target', message: `"${target}" is not a ${type === 'workflow' ? 'template' : 'tool role'} name (a letter, then letters, digits, "_" or "-")` });
  } else if (type === 'workflow' && target === file.name) {
    issues.push({ path: 'end_action_target', message: 'a workflow cannot start itself as its end action' });
  }
  return issues;
}

function targetHint(type: Exclude<EndActionType, 'none'>): string {
  switch (type) {
    case 'api_call':
      return 'the URL that receives the result';
    case 'workflow':
      return 'the name of the template to start';
    case 'tool_call':
      return 'the tool role whose queue receives the result';
  }
}

/**
 * The compiled template fields of a checked workflow file. Fields left at their defaults are omitted,
 * so a workflow without template fields compiles exactly as before.
 */
export function compileTemplateFields(file: TemplateFieldValues): TemplateFields {
  return {
    ...(file.category !== undefined ? { category: file.category } : {}),
    ...(file.tags.length > 0 ? { tags: file.tags } : {}),
    ...(file.guidelines !== undefined ? { guidelines: file.guidelines } : {}),
    ...(file.state_schema !== undefined ? { stateSchema: file.state_schema } : {}),
    ...(file.end_action_type !== 'none' ? { endAction: { type: file.end_action_type, target: file.end_action_target } } : {}),
  };
}
