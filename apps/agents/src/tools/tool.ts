/**
 * A tool: what a tool phase runs instead of an agent. A name, a parameter schema (zod, or a JSON
 * Schema object checked with Ajv), and a handler that gets the validated parameters and returns the
 * phase's output (any JSON value).
 *
 * User tools are modules listed in `FLEET_TOOL_MODULES` that export one (default export or named
 * `tool`), or several (`tools`) of these; see ./registry.ts.
 */
import { FleetError, compileStateSchema, stateSchemaIssues } from '@agentfleet/core';
import type { z } from 'zod';
import type { ToolSettings } from './settings.js';

/** What a handler may use besides its parameters. */
export interface ToolContext {
  /** Aborted when the phase times out or the run is cancelled: pass it to every I/O call. */
  signal: AbortSignal;
  /** The run's artifacts directory (absolute): the only place `write_file` writes. */
  artifactsDir: string;
  runId: string;
  phase: string;
  settings: ToolSettings;
  /**
   * The call's idempotency key inside an agent's tool loop, `<run>.<phase>.<iteration>.<call>`: the
   * same on a retried attempt that repeats an unfinished call. `http_request` sends it as
   * `Idempotency-Key`. Absent in tool phases.
   */
  idempotencyKey?: string | undefined;
}

/** A tool a `tools` pool can run. */
export interface FleetTool<P = unknown> {
  /** As named in workflows (`tool: http_request`): a letter, then letters, digits, `_` or `-`. */
  name: string;
  description?: string;
  /** The parameter schema: a zod schema, or a JSON Schema (draft-07) object. */
  parameters: z.ZodType<P> | Record<string, unknown>;
  /** Run the tool; the result becomes the phase's output. Throw a FleetError to choose the retry policy. */
  handler(params: P, ctx: ToolContext): unknown;
}

function isZod(schema: unknown): schema is z.ZodType {
  return typeof (schema as { safeParse?: unknown }).safeParse === 'function';
}

/** A validator for a tool's parameters: returns the parsed parameters or throws `TOOL_INPUT_INVALID`. */
export function parameterValidator(tool: FleetTool): (params: unknown) => unknown {
  const schema = tool.parameters;
  const fail = (problems: string[]) =>
    new FleetError('TOOL_INPUT_INVALID', `tool "${tool.name}": parameters are not valid:\n${problems.map((p) => `- ${p}`).join('\n')}`, { details: { tool: tool.name, problems } });
  if (isZod(schema)) {
    return (params) => {
      const r = schema.safeParse(params);
      if (r.success) return r.data;
      throw fail(r.error.issues.map((i) => `parameters${i.path.length ? '.' + i.path.join('.') : ''}: ${i.message}`));
    };
  }
  const validate = compileStateSchema(schema);
  return (params) => {
    if (validate(params)) return params;
    throw fail(stateSchemaIssues(validate.errors).map((i) => `parameters${i.path === '/' ? '' : i.path.replaceAll('/', '.')}: ${i.message}`));
  };
}
