/**
 * Custom agent roles without code (issue 8): a role written as YAML or JSON (name, description,
 * instructions, a JSON Schema of its output, and optionally provider, model and temperature),
 * registered in Redis beside the workflow templates and served by `fleet agents --roles <name>`.
 *
 * Keys (under the fleet prefix):
 * - `<p>:roles`          set of registered role names
 * - `<p>:role:<name>`    hash: `definition` (the role file as JSON), `created_at`, `updated_at` (epoch ms)
 *
 * The agents package turns a {@link RoleDefinition} into a runnable role (`customRole`): its replies
 * are validated with Ajv against `output_schema`, and the offline model answers with a placeholder
 * shaped by the schema.
 *
 * @example
 * # reviewer-lite.yaml
 * name: security_auditor
 * description: Audits code for security problems.
 * instructions: |
 *   You are a security auditor. List every vulnerability with its severity and file.
 * model: claude-haiku-4-5
 * output_schema:
 *   type: object
 *   required: [findings, passed]
 *   properties:
 *     passed: { type: boolean }
 *     findings: { type: array, items: { type: string } }
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { Redis } from 'ioredis';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { FleetError, formatIssues, type ValidationIssue } from '../errors.js';
import { AgentToolsSchema, MaxTurnsSchema, McpServersSchema } from '../workflow/agent-tools.js';

/** Role names: a lower-case letter, then lower-case letters, digits, `_` or `-` (also the queue name `agent-<name>`). */
export const ROLE_NAME_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;

/** Names that are not agent roles but mean something else in a workflow (tool, approval, child-workflow phases). */
const RESERVED_ROLE_NAMES = ['tools', 'approval', 'workflow'];

/** A custom role as written in its file (snake_case). */
export const RoleFileSchema = z.strictObject({
  name: z.string().regex(ROLE_NAME_PATTERN, 'name must start with a lower-case letter and hold only lower-case letters, digits, "_" or "-" (at most 64)'),
  description: z.string().min(1, 'description: say in one sentence what the role returns').max(1024),
  /** The system prompt: what the role does and how it answers. */
  instructions: z.string().min(1, 'instructions: give the role its standing instructions').max(65_536, 'instructions are at most 64 KiB'),
  /** JSON Schema (draft 2020-12) of the output; the model answers through a tool with this input schema. */
  output_schema: z.record(z.string(), z.unknown(), { error: 'output_schema must be a JSON Schema object (type: object, properties, required)' }),
  /** Provider for this role; the fleet's provider when absent. */
  provider: z.enum(['anthropic', 'openai-compatible'], { error: 'provider must be anthropic or openai-compatible' }).optional(),
  /** Model for this role; `FLEET_ROLE_MODELS` and a phase's `model:` override it. */
  model: z.string().min(1).max(256).optional(),
  /** Sampling temperature, 0..1 (sent only by providers that accept it). */
  temperature: z.number().min(0).max(1).optional(),
  /** Stream the replies (long outputs). @defaultValue false */
  stream: z.boolean().optional(),
  /** Tools the role may call before it submits (see ../workflow/agent-tools.ts). @defaultValue none */
  tools: AgentToolsSchema.optional(),
  /** MCP servers of this role; their allowed tools are the role's without naming them in `tools`. */
  mcp_servers: McpServersSchema.optional(),
  /** Model calls one attempt's tool loop may make. @defaultValue 10 */
  max_turns: MaxTurnsSchema.optional(),
  /** Structured output guaranteed by the provider (`strict`); false sends the schema as a plain tool. @defaultValue true */
  strict: z.boolean().optional(),
  /** Effort of the model (Anthropic `output_config.effort`). @defaultValue the provider's */
  effort: z.enum(['low', 'medium', 'high', 'xhigh', 'max'], { error: 'effort must be one of low, medium, high, xhigh, max' }).optional(),
  /** Let the model think before it answers (Anthropic adaptive thinking). @defaultValue false */
  thinking: z.boolean().optional(),
});
/** A custom role definition (validated). */
export type RoleDefinition = z.infer<typeof RoleFileSchema>;

/** A registered role with its timestamps. */
export interface RegisteredRole {
  definition: RoleDefinition;
  /** ISO 8601. */
  created_at: string;
  updated_at: string;
}

/**
 * One Ajv for output schemas: JSON Schema draft 2020-12 (what Anthropic's `input_schema` speaks),
 * strict (unknown keywords are errors, so typos show), with the standard formats.
 */
const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, strictTuples: false, strictRequired: false });
// ajv-formats is CommonJS: its function is the module itself (or its `default`, depending on the loader).
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (a: Ajv2020) => Ajv2020;
addFormats(ajv);

/**
 * Compile a role's output schema.
 *
 * @throws FleetError `INVALID_INPUT` when it is not a valid JSON Schema, or does not describe an
 *   object (a forced tool call's input is always an object).
 */
export function compileOutputSchema(schema: Record<string, unknown>, source = 'output_schema'): ValidateFunction {
  if (schema.type !== 'object') {
    throw new FleetError('INVALID_INPUT', `${source}: the output must be an object: set "type: object" with its "properties" and "required" fields`);
  }
  try {
    // Each role file compiles its own schema: no `$id` may clash with another role's.
    const { $id, $schema, ...rest } = schema;
    void $id;
    void $schema;
    return ajv.compile(rest);
  } catch (err) {
    throw new FleetError('INVALID_INPUT', `${source} is not a valid JSON Schema (draft 2020-12): ${(err as Error).message}`, { cause: err });
  }
}

/** Ajv errors as readable problems: `findings.0.severity: must be equal to one of the allowed values (info, major)`. */
export function outputSchemaProblems(errors: readonly ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    const parts = e.instancePath.split('/').slice(1).map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
    if (e.keyword === 'required' && typeof e.params.missingProperty === 'string') parts.push(e.params.missingProperty);
    if (e.keyword === 'additionalProperties' && typeof e.params.additionalProperty === 'string') parts.push(e.params.additionalProperty);
    const allowed = e.keyword === 'enum' && Array.isArray(e.params.allowedValues) ? ` (${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')})` : '';
    return `${parts.join('.') || '(root)'}: ${e.message ?? e.keyword}${allowed}`;
  });
}

/**
 * Validate a parsed role file.
 *
 * @param reserved - names that may not be used (the built-in roles).
 * @throws FleetError `INVALID_INPUT` listing every problem, each with its field.
 */
export function parseRoleDefinition(raw: unknown, reserved: readonly string[] = [], source = 'role'): RoleDefinition {
  const parsed = RoleFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issues: ValidationIssue[] = parsed.error.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message }));
    throw new FleetError('INVALID_INPUT', `${source} is not a valid role:\n${formatIssues(issues)}`, { details: { issues } });
  }
  const def = parsed.data;
  if ([...reserved, ...RESERVED_ROLE_NAMES].includes(def.name)) {
    throw new FleetError('CONFLICT', `${source}: "${def.name}" is a built-in role (or a reserved name); pick another name`);
  }
  if (def.name.endsWith('_agent')) {
    throw new FleetError('INVALID_INPUT', `${source}: name "${def.name}" must not end with "_agent" (workflows may write "<role>_agent" for "<role>"); use "${def.name.slice(0, -6)}"`);
  }
  compileOutputSchema(def.output_schema, `${source}: output_schema`);
  return def;
}

/**
 * Parse a role file's text (YAML, or JSON, which is YAML too); validate it with {@link parseRoleDefinition}.
 *
 * @throws FleetError `INVALID_INPUT` naming `source` (and the line) when it is not YAML.
 */
export function parseRoleText(text: string, source: string): unknown {
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true, maxAliasCount: 100 });
  } catch (err) {
    const message = err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err);
    throw new FleetError('INVALID_INPUT', `${source}: not valid YAML or JSON: ${message}`, { cause: err });
  }
}

/** The custom roles registered in Redis under the fleet prefix. */
export class RoleRegistry {
  /**
   * @param redis - a connection for ordinary commands.
   * @param prefix - the fleet's key prefix (`FLEET_QUEUE_PREFIX`).
   * @param reserved - the built-in role names, which cannot be registered over.
   */
  constructor(
    readonly redis: Redis,
    readonly prefix: string,
    readonly reserved: readonly string[] = [],
  ) {}

  get namesKey(): string {
    return `${this.prefix}:roles`;
  }
  roleKey(name: string): string {
    return `${this.prefix}:role:${name}`;
  }

  /**
   * Register a role, or replace a registered one with `replace`.
   *
   * @throws FleetError `INVALID_INPUT` (bad file, listing the problems); `CONFLICT` when the name is
   *   a built-in role, or already registered and `replace` is not set.
   */
  async add(raw: unknown, options: { replace?: boolean; source?: string; now?: number } = {}): Promise<RegisteredRole> {
    const def = parseRoleDefinition(raw, this.reserved, options.source);
    const now = String(options.now ?? Date.now());
    const key = this.roleKey(def.name);
    const created = await this.redis.hsetnx(key, 'created_at', now);
    if (created === 0 && !options.replace) {
      throw new FleetError('CONFLICT', `a role named "${def.name}" is already registered; \`fleet roles add --replace\` to replace it, or \`fleet roles remove ${def.name}\``);
    }
    await this.redis.multi().hset(key, 'definition', JSON.stringify(def), 'updated_at', now).sadd(this.namesKey, def.name).exec();
    return this.get(def.name);
  }

  /** A registered role, or undefined. */
  async find(name: string): Promise<RegisteredRole | undefined> {
    const [definition, createdAt, updatedAt] = await this.redis.hmget(this.roleKey(name), 'definition', 'created_at', 'updated_at');
    if (definition === null || definition === undefined) return undefined;
    return {
      definition: RoleFileSchema.parse(JSON.parse(definition)),
      created_at: new Date(Number(createdAt)).toISOString(),
      updated_at: new Date(Number(updatedAt)).toISOString(),
    };
  }

  /** @throws FleetError `ROLE_NOT_FOUND` naming the registered roles. */
  async get(name: string): Promise<RegisteredRole> {
    const role = await this.find(name);
    if (!role) throw await this.notFound(name);
    return role;
  }

  /** Registered roles, by name. */
  async list(): Promise<RegisteredRole[]> {
    const names = (await this.redis.smembers(this.namesKey)).sort();
    const roles = await Promise.all(names.map((n) => this.find(n)));
    return roles.filter((r): r is RegisteredRole => r !== undefined);
  }

  /** @throws FleetError `ROLE_NOT_FOUND`. */
  async remove(name: string): Promise<void> {
    const [[, deleted]] = (await this.redis.multi().del(this.roleKey(name)).srem(this.namesKey, name).exec()) as [[unknown, number], unknown];
    if (deleted === 0) throw await this.notFound(name);
  }

  private async notFound(name: string): Promise<FleetError> {
    const names = (await this.redis.smembers(this.namesKey)).sort();
    return new FleetError(
      'ROLE_NOT_FOUND',
      `no custom role "${name}" is registered${names.length > 0 ? ` (registered: ${names.join(', ')})` : ''}; register one with \`fleet roles add <file>\``,
    );
  }
}
