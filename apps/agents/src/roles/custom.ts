/**
 * Custom roles (issue 8): roles defined without code, as a YAML/JSON file registered with
 * `fleet roles add` ({@link customRole}), and roles written as TypeScript or JavaScript modules
 * listed in `FLEET_ROLE_MODULES` ({@link loadRoleModules}).
 *
 * A file role's replies are validated with Ajv against its `output_schema` (the repair loop feeds
 * the violations back to the model); its offline answer is a deterministic placeholder shaped by
 * the schema ({@link placeholderFor}), every string saying it came from the offline model.
 */
import { resolve } from 'node:path';
import { AgentToolsSchema, FleetError, MaxTurnsSchema, McpServersSchema, ROLE_NAME_PATTERN, compileMcpServers, compileOutputSchema, outputSchemaProblems, type RoleDefinition } from '@agentfleet/core';
import { z } from 'zod';
import { importUserModule } from '../tools/registry.js';
import { OFFLINE_LABEL, type AgentRole } from './role.js';

/** What a custom role's output is at run time: a JSON object checked against its JSON Schema. */
const AnyObject = z.record(z.string(), z.unknown());

/** A JSON Schema node, as far as {@link placeholderFor} reads it. */
type SchemaNode = Record<string, unknown>;

const FORMAT_EXAMPLES: Record<string, string> = {
  'date-time': '2000-01-01T00:00:00.000Z',
  date: '2000-01-01',
  time: '00:00:00Z',
  email: 'offline@example.com',
  uri: 'https://example.com/offline',
  url: 'https://example.com/offline',
  uuid: '00000000-0000-4000-8000-000000000000',
  hostname: 'example.com',
  ipv4: '192.0.2.1',
};

/** Bounds on offline placeholders built from a role's schema (a hostile schema cannot make them huge). */
const PLACEHOLDER_MAX_ITEMS = 100;
const PLACEHOLDER_MAX_LENGTH = 10_000;

/**
 * A deterministic value that fits `schema` as far as it can be guessed: `const`, the first `enum`
 * value, `default` or `examples[0]`, else by type: objects with every required property, arrays
 * with `minItems` items (at least one), strings that say they come from the offline model (or an
 * example of their `format`), numbers at their minimum, `false`, `null`. `anyOf`/`oneOf` take the
 * first branch, `allOf` merges its branches. Patterns and `$ref`s are not followed.
 *
 * @param path - where the value sits (`findings[0].message`), written into placeholder strings.
 */
export function placeholderFor(schema: unknown, path = ''): unknown {
  if (typeof schema !== 'object' || schema === null) return null;
  const s = schema as SchemaNode;
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
  if ('default' in s) return s.default;
  if (Array.isArray(s.examples) && s.examples.length > 0) return s.examples[0];
  for (const key of ['anyOf', 'oneOf'] as const) {
    const branches = s[key];
    if (Array.isArray(branches) && branches.length > 0) return placeholderFor(branches[0], path);
  }
  if (Array.isArray(s.allOf) && s.allOf.length > 0) {
    const merged: SchemaNode = { ...s, allOf: undefined };
    for (const part of s.allOf as SchemaNode[]) {
      merged.type ??= part.type;
      merged.properties = { ...(merged.properties as SchemaNode | undefined), ...(part.properties as SchemaNode | undefined) };
      merged.required = [...((merged.required as string[] | undefined) ?? []), ...((part.required as string[] | undefined) ?? [])];
    }
    delete merged.allOf;
    return placeholderFor(merged, path);
  }
  const types = Array.isArray(s.type) ? (s.type as string[]) : typeof s.type === 'string' ? [s.type] : [];
  const type = types.find((t) => t !== 'null') ?? types[0] ?? (s.properties ? 'object' : s.items ? 'array' : 'string');
  switch (type) {
    case 'object': {
      const props = (s.properties ?? {}) as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const name of (s.required as string[] | undefined) ?? []) out[name] = placeholderFor(props[name] ?? { type: 'string' }, path ? `${path}.${name}` : name);
      return out;
    }
    case 'array': {
      // Clamped: a schema asking for a billion items must not exhaust memory building a placeholder.
      const min = typeof s.minItems === 'number' ? Math.min(s.minItems, PLACEHOLDER_MAX_ITEMS) : 0;
      const max = typeof s.maxItems === 'number' ? s.maxItems : Number.POSITIVE_INFINITY;
      const count = Math.min(Math.max(min, 1), max);
      return Array.from({ length: count }, (_, i) => placeholderFor(Array.isArray(s.prefixItems) ? (s.prefixItems[i] ?? s.items) : s.items, `${path}[${i}]`));
    }
    case 'integer':
    case 'number': {
      let n = typeof s.minimum === 'number' ? s.minimum : typeof s.exclusiveMinimum === 'number' ? s.exclusiveMinimum + 1 : 0;
      if (typeof s.maximum === 'number' && n > s.maximum) n = s.maximum;
      if (typeof s.exclusiveMaximum === 'number' && n >= s.exclusiveMaximum) n = s.exclusiveMaximum - 1;
      return type === 'integer' ? Math.ceil(n) : n;
    }
    case 'boolean':
      return false;
    case 'null':
      return null;
    default: {
      const example = typeof s.format === 'string' ? FORMAT_EXAMPLES[s.format] : undefined;
      let text = example ?? `${OFFLINE_LABEL} ${path || 'value'}`;
      if (typeof s.minLength === 'number' && text.length < s.minLength) text = text.padEnd(Math.min(s.minLength, PLACEHOLDER_MAX_LENGTH), '.');
      if (typeof s.maxLength === 'number' && text.length > s.maxLength) text = text.slice(0, s.maxLength);
      return text;
    }
  }
}

/** A validator of replies against a JSON Schema, in the shape of {@link AgentRole.validateOutput}. */
function jsonSchemaValidator(schema: Record<string, unknown>, source: string): (value: unknown) => { ok: true; value: Record<string, unknown> } | { ok: false; problems: string[] } {
  const validate = compileOutputSchema(schema, source);
  return (value) => (validate(value) ? { ok: true, value: value as Record<string, unknown> } : { ok: false, problems: outputSchemaProblems(validate.errors) });
}

/**
 * The runnable role of a registered role file: its instructions as the system prompt, its
 * `output_schema` as the tool's input schema and the validator of replies, its model, provider,
 * temperature and streaming, and a placeholder answer for the offline model.
 *
 * @throws FleetError `INVALID_INPUT` when the output schema does not compile (the registry checked it already).
 */
export function customRole(def: RoleDefinition): AgentRole<Record<string, unknown>> {
  const schema = def.output_schema;
  return {
    name: def.name,
    description: def.description,
    instructions: def.instructions,
    outputSchema: AnyObject,
    outputJsonSchema: stripMeta(schema),
    validateOutput: jsonSchemaValidator(schema, `role "${def.name}": output_schema`),
    offline: () => placeholderFor(schema) as Record<string, unknown>,
    ...(def.model !== undefined ? { model: def.model } : {}),
    ...(def.provider !== undefined ? { provider: def.provider } : {}),
    ...(def.temperature !== undefined ? { temperature: def.temperature } : {}),
    ...(def.stream ? { stream: true } : {}),
    ...(def.tools !== undefined ? { tools: def.tools } : {}),
    ...(def.mcp_servers !== undefined ? { mcpServers: compileMcpServers(def.mcp_servers) } : {}),
    ...(def.max_turns !== undefined ? { maxTurns: def.max_turns } : {}),
    ...(def.strict !== undefined ? { strict: def.strict } : {}),
    ...(def.effort !== undefined ? { effort: def.effort } : {}),
    ...(def.thinking !== undefined ? { thinking: def.thinking } : {}),
  };
}

/** The schema as sent to the provider: without `$schema`/`$id`, which tool input schemas do not take. */
function stripMeta(schema: Record<string, unknown>): Record<string, unknown> {
  const { $schema, $id, ...rest } = schema;
  void $schema;
  void $id;
  return rest;
}

/** Absolute paths of the role modules in `FLEET_ROLE_MODULES` (comma-separated, relative to `cwd`). */
export function roleModulePaths(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string[] {
  return (env.FLEET_ROLE_MODULES ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => resolve(cwd, p));
}

/**
 * Import the roles of `FLEET_ROLE_MODULES`. A module exports an {@link AgentRole} as its default
 * export, as `role`, or several as `roles`. A role needs `name`, `description`, `instructions` and
 * an output schema: `outputSchema` (zod; replies are parsed with it) or `outputJsonSchema` (replies
 * are checked with Ajv). `offline` defaults to the schema's placeholder. `.ts` modules load through
 * tsx, with no build step.
 *
 * @param reserved - names taken by the built-in roles.
 * @throws FleetError `INVALID_INPUT` naming the module and what is missing.
 */
export async function loadRoleModules(paths: readonly string[], reserved: readonly string[] = []): Promise<AgentRole[]> {
  const roles: AgentRole[] = [];
  for (const path of paths) {
    const mod = await importUserModule(path, 'FLEET_ROLE_MODULES');
    const found = [mod.default, mod.role, ...(Array.isArray(mod.roles) ? (mod.roles as unknown[]) : [])].filter((r) => r !== undefined && r !== null);
    // tsx wraps a TypeScript module's default export in another `default`.
    const exported = found.map((r) => (typeof r === 'object' && r !== null && 'default' in r && !('instructions' in r) ? (r).default : r));
    if (exported.length === 0) throw new FleetError('INVALID_INPUT', `FLEET_ROLE_MODULES: ${path} exports no role; export default { name, description, instructions, outputSchema }`);
    for (const r of exported) roles.push(moduleRole(r, path, reserved));
  }
  return roles;
}

function moduleRole(value: unknown, path: string, reserved: readonly string[]): AgentRole {
  const r = (typeof value === 'object' && value !== null ? value : {}) as Partial<AgentRole>;
  const where = `FLEET_ROLE_MODULES: ${path}`;
  if (typeof r.name !== 'string' || !ROLE_NAME_PATTERN.test(r.name)) throw new FleetError('INVALID_INPUT', `${where}: a role needs a "name" (a lower-case letter, then lower-case letters, digits, "_" or "-")`);
  if (reserved.includes(r.name)) throw new FleetError('INVALID_INPUT', `${where}: "${r.name}" is a built-in role; pick another name`);
  for (const field of ['description', 'instructions'] as const) {
    if (typeof r[field] !== 'string' || !r[field]) throw new FleetError('INVALID_INPUT', `${where}: role "${r.name}" needs "${field}" (a string)`);
  }
  const hasZod = typeof (r.outputSchema as { safeParse?: unknown } | undefined)?.safeParse === 'function';
  if (!hasZod && !r.outputJsonSchema) throw new FleetError('INVALID_INPUT', `${where}: role "${r.name}" needs "outputSchema" (zod) or "outputJsonSchema" (a JSON Schema object)`);
  const role = { ...r } as AgentRole;
  if (!hasZod) role.outputSchema = AnyObject;
  // Tool fields as in a role file: checked here, so a typo fails at start and not in a phase.
  const toolFields = { tools: AgentToolsSchema, mcpServers: McpServersSchema, maxTurns: MaxTurnsSchema } as const;
  for (const [field, schema] of Object.entries(toolFields)) {
    const value = (r as Record<string, unknown>)[field];
    if (value === undefined) continue;
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new FleetError('INVALID_INPUT', `${where}: role "${r.name}": ${field}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
    if (field === 'mcpServers') role.mcpServers = compileMcpServers(parsed.data as Parameters<typeof compileMcpServers>[0]);
  }
  if (r.outputJsonSchema && !r.validateOutput && !hasZod) role.validateOutput = jsonSchemaValidator(r.outputJsonSchema, `${where}: role "${r.name}": outputJsonSchema`);
  if (typeof r.offline !== 'function') {
    const schema = r.outputJsonSchema ?? (z.toJSONSchema(role.outputSchema, { io: 'output' }));
    role.offline = () => placeholderFor(schema);
  }
  return role;
}
