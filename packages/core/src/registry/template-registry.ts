/**
 * The workflow template registry: code-free workflows stored in Redis, versioned, seen by every
 * manager replica and by the `fleet` CLI.
 *
 * Keys (under the fleet prefix):
 * - `<p>:templates`          set of registered template names
 * - `<p>:template:<name>`    hash: `version` (current, 1-based), `active` (`1`/`0`), `created_at`,
 *                            `updated_at` (epoch ms), and `v<n>` → the template as posted (JSON, file format)
 *
 * A template is the workflow file format (snake_case, seconds) plus the template fields
 * (`category`, `tags`, `guidelines`, `state_schema`, `end_action_type`, `end_action_target`). The
 * registry numbers versions itself: version `n` compiles with `version: "<n>"`, whatever the body said.
 * Every version is kept; a run stores the compiled definition it started with, so an update never
 * changes a run in flight. Built-in workflows are listed beside the registered ones and cannot be
 * registered over, updated or deleted.
 */
import type { Redis } from 'ioredis';
import { luaCommand } from '../store/lua-command.js';
import { FleetError } from '../errors.js';
import { compileWorkflow } from '../workflow/compile.js';
import type { WorkflowDefinition } from '../workflow/definition.js';
import { listBuiltinWorkflows, loadBuiltinWorkflow } from './workflow-files.js';

// ARGV[4]: the name in lower case. A name that differs from a registered one only in case is
// refused (returns that name), so two templates never read alike.
const CREATE_LUA = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if string.lower(name) == ARGV[4] then return name end
end
redis.call('HSET', KEYS[2], 'version', 1, 'active', 1, 'created_at', ARGV[2], 'updated_at', ARGV[2], 'v1', ARGV[3])
redis.call('SADD', KEYS[1], ARGV[1])
return 1
`;

const UPDATE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'v' .. v, ARGV[2], 'active', 1, 'updated_at', ARGV[1])
return v
`;

/** One row of the template list. */
export interface TemplateSummary {
  name: string;
  /** Current version: 1-based for registered templates; the file's version for built-ins. */
  version: string;
  is_active: boolean;
  builtin: boolean;
  description: string;
  category: string | null;
  tags: string[];
  phases: number;
  end_action_type: string;
  /** ISO 8601; null for built-ins. */
  created_at: string | null;
  updated_at: string | null;
}

/** A template with its body and compiled definition. */
export interface TemplateDetail extends TemplateSummary {
  /** The template as posted (file format), `null` for built-ins (see `definition`). */
  template: Record<string, unknown> | null;
  /** The compiled definition of this version (durations in ms). */
  definition: WorkflowDefinition;
  /** Number of stored versions (1 for built-ins). */
  versions: number;
}

export interface TemplateListQuery {
  category?: string | undefined;
  is_active?: boolean | undefined;
  /** Free text, case-insensitive, over name, description, category and tags. */
  q?: string | undefined;
  skip?: number | undefined;
  limit?: number | undefined;
  /** Only these registered templates (built-ins are always listed): a non-admin key's grants. @defaultValue every template */
  registered?: ReadonlySet<string> | undefined;
}

type Script = (...args: string[]) => Promise<number>;
type CreateScript = (...args: string[]) => Promise<number | string>;

export class TemplateRegistry {
  private readonly createScript: CreateScript;
  private readonly updateScript: Script;
  private builtinNames: Promise<string[]> | undefined;

  /**
   * @param redis - a connection for ordinary commands.
   * @param prefix - the fleet's key prefix (`FLEET_QUEUE_PREFIX`).
   */
  constructor(
    readonly redis: Redis,
    readonly prefix: string,
  ) {
    this.createScript = luaCommand<CreateScript>(redis, 'fleetTemplateCreateCaseless', 2, CREATE_LUA);
    this.updateScript = luaCommand<Script>(redis, 'fleetTemplateUpdate', 1, UPDATE_LUA);
  }

  get namesKey(): string {
    return `${this.prefix}:templates`;
  }
  templateKey(name: string): string {
    return `${this.prefix}:template:${name}`;
  }

  /** Names of the built-in workflows (read once). */
  builtins(): Promise<string[]> {
    this.builtinNames ??= listBuiltinWorkflows();
    return this.builtinNames;
  }

  /**
   * Register a new template as version 1.
   *
   * @param raw - the template in the file format (parsed JSON/YAML).
   * @throws FleetError `INVALID_WORKFLOW` listing every problem; `CONFLICT` when the name is taken
   *   (registered, even if deactivated, or built in), also when it differs from a taken one only in
   *   case (`Software-Delivery` and the built-in `software-delivery`).
   */
  async create(raw: unknown, now = Date.now()): Promise<TemplateDetail> {
    const def = compileWorkflow(withVersion(raw, 1));
    const lower = def.name.toLowerCase();
    await this.refuseBuiltinName(def.name);
    const created = await this.createScript(this.namesKey, this.templateKey(def.name), def.name, String(now), JSON.stringify(stripVersion(raw)), lower);
    if (typeof created === 'string') throw nameTaken(def.name, created);
    if (created === 0) throw nameTaken(def.name, def.name);
    return this.get(def.name);
  }

  /**
   * Check a template as {@link create} would, writing nothing: the compiled definition of its
   * version 1 when it would register now.
   *
   * @param raw - the template in the file format (parsed JSON/YAML).
   * @throws FleetError `INVALID_WORKFLOW` listing every problem (`details.issues`, each with its path);
   *   `CONFLICT` when the name is built in or registered (compared without case).
   */
  async validate(raw: unknown): Promise<WorkflowDefinition> {
    const def = compileWorkflow(withVersion(raw, 1));
    await this.refuseBuiltinName(def.name);
    const lower = def.name.toLowerCase();
    const taken = (await this.redis.smembers(this.namesKey)).find((n) => n.toLowerCase() === lower);
    if (taken !== undefined) throw nameTaken(def.name, taken);
    return def;
  }

  /** @throws FleetError `CONFLICT` when `name` is a built-in workflow's, compared without case. */
  private async refuseBuiltinName(name: string): Promise<void> {
    const lower = name.toLowerCase();
    const builtin = (await this.builtins()).find((b) => b.toLowerCase() === lower);
    if (builtin === undefined) return;
    throw new FleetError(
      'CONFLICT',
      builtin === name
        ? `"${name}" is a built-in workflow; pick another template name`
        : `"${name}" clashes with the built-in workflow "${builtin}" (template names are compared without case); pick another template name`,
    );
  }

  /**
   * Store a new version of a registered template (and activate it again if it was deactivated).
   *
   * @throws FleetError `INVALID_WORKFLOW`; `INVALID_INPUT` when the body names another template;
   *   `WORKFLOW_NOT_FOUND` when no template has that name; `CONFLICT` for a built-in.
   */
  async update(name: string, raw: unknown, now = Date.now()): Promise<TemplateDetail> {
    const body = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? { ...(raw as Record<string, unknown>) } : raw;
    if (typeof body === 'object' && body !== null) {
      const b = body as Record<string, unknown>;
      if (b.name === undefined) b.name = name;
      else if (b.name !== name) throw new FleetError('INVALID_INPUT', `name: the body names ${JSON.stringify(b.name)} but the URL names "${name}"; they must match`);
    }
    if ((await this.builtins()).includes(name)) throw new FleetError('CONFLICT', `"${name}" is a built-in workflow and cannot be changed`);
    compileWorkflow(withVersion(body, 1));
    const version = await this.updateScript(this.templateKey(name), String(now), JSON.stringify(stripVersion(body)));
    if (version === 0) throw notFound(name);
    return this.get(name, version);
  }

  /**
   * Deactivate a template: it is no longer listed as active and new runs cannot use it; its versions
   * are kept, and a later update activates it again.
   *
   * @throws FleetError `WORKFLOW_NOT_FOUND`; `CONFLICT` for a built-in.
   */
  async deactivate(name: string, now = Date.now()): Promise<void> {
    if ((await this.builtins()).includes(name)) throw new FleetError('CONFLICT', `"${name}" is a built-in workflow and cannot be deleted`);
    const exists = await this.redis.exists(this.templateKey(name));
    if (!exists) throw notFound(name);
    await this.redis.hset(this.templateKey(name), 'active', '0', 'updated_at', String(now));
  }

  /**
   * A template (registered or built in), at its current version or at `version`.
   *
   * @throws FleetError `WORKFLOW_NOT_FOUND` when there is no such template or version.
   */
  async get(name: string, version?: number): Promise<TemplateDetail> {
    const [current, active, createdAt, updatedAt] = await this.redis.hmget(this.templateKey(name), 'version', 'active', 'created_at', 'updated_at');
    if (current === null) {
      if (version === undefined && (await this.builtins()).includes(name)) {
        const definition = await loadBuiltinWorkflow(name);
        return { ...summaryOf(definition, { builtin: true, active: true, createdAt: null, updatedAt: null }), template: null, definition, versions: 1 };
      }
      throw notFound(name);
    }
    const v = version ?? Number(current);
    const body = await this.redis.hget(this.templateKey(name), `v${v}`);
    if (body === null) throw new FleetError('WORKFLOW_NOT_FOUND', `template "${name}" has no version ${v}; versions are 1 to ${current}`);
    const template = JSON.parse(body) as Record<string, unknown>;
    const definition = compileWorkflow(withVersion(template, v));
    return {
      ...summaryOf(definition, { builtin: false, active: active === '1', createdAt: Number(createdAt), updatedAt: Number(updatedAt) }),
      template: { ...template, version: String(v) },
      definition,
      versions: Number(current),
    };
  }

  /**
   * The compiled definition a new run of `name` uses: the current version of an active registered
   * template, else the built-in workflow of that name.
   *
   * @throws FleetError `WORKFLOW_NOT_FOUND` when there is none, or the template is deactivated.
   */
  async resolve(name: string, version?: number): Promise<WorkflowDefinition> {
    const t = await this.get(name, version);
    if (!t.is_active) throw new FleetError('WORKFLOW_NOT_FOUND', `template "${name}" is deactivated; update it (PUT) to use it again`);
    return t.definition;
  }

  /** Built-in and registered templates, filtered and paged, built-ins first, then by name. */
  async list(query: TemplateListQuery = {}): Promise<{ items: TemplateSummary[]; total: number }> {
    const all: TemplateSummary[] = [];
    for (const name of await this.builtins()) {
      all.push(summaryOf(await loadBuiltinWorkflow(name), { builtin: true, active: true, createdAt: null, updatedAt: null }));
    }
    const names = (await this.redis.smembers(this.namesKey)).filter((n) => query.registered === undefined || query.registered.has(n)).sort();
    for (const name of names) {
      try {
        const { definition, ...rest } = await this.get(name);
        void definition;
        all.push(summaryFromDetail(rest));
      } catch {
        // A template removed between SMEMBERS and HGET: not listed.
      }
    }
    const q = query.q?.trim().toLowerCase();
    const filtered = all.filter(
      (t) =>
        (query.category === undefined || t.category === query.category) &&
        (query.is_active === undefined || t.is_active === query.is_active) &&
        (!q || [t.name, t.description, t.category ?? '', ...t.tags].some((s) => s.toLowerCase().includes(q))),
    );
    const skip = query.skip ?? 0;
    const limit = query.limit ?? 50;
    return { items: filtered.slice(skip, skip + limit), total: filtered.length };
  }
}

/**
 * What a key that is not an admin key may see of an end-action target: a webhook URL (`api_call`)
 * as its origin only, since its user info, path and query may hold a token
 * (`https://hooks.example.com/…?token=…` → `https://hooks.example.com`); workflow and tool targets
 * are names and shown as they are.
 */
export function visibleEndActionTarget(type: string, target: string | null | undefined): string | null | undefined {
  if (type !== 'api_call' || typeof target !== 'string') return target;
  try {
    return new URL(target).origin;
  } catch {
    return '(invalid URL)';
  }
}

/** A template as a key that is not an admin key sees it: the end action's target through {@link visibleEndActionTarget}. */
export function templateForViewer(t: TemplateDetail): TemplateDetail {
  const type = t.end_action_type;
  const template = t.template && 'end_action_target' in t.template ? { ...t.template, end_action_target: visibleEndActionTarget(type, t.template.end_action_target as string | null) } : t.template;
  const endAction = t.definition.endAction;
  const definition = endAction ? { ...t.definition, endAction: { ...endAction, target: visibleEndActionTarget(endAction.type, endAction.target) as typeof endAction.target } } : t.definition;
  return { ...t, template, definition };
}

/** `CONFLICT` for registering `name` while the registered template `taken` has it (or the same name in another case). */
function nameTaken(name: string, taken: string): FleetError {
  return new FleetError(
    'CONFLICT',
    taken === name
      ? `a template named "${name}" already exists; PUT /api/workflow-templates/${name} (or \`fleet workflows add --update\`) to add a version`
      : `"${name}" clashes with the registered template "${taken}" (template names are compared without case); pick another name, or PUT /api/workflow-templates/${taken} to add a version of it`,
  );
}

function notFound(name: string): FleetError {
  return new FleetError('WORKFLOW_NOT_FOUND', `no workflow template "${name}"; list them with GET /api/workflow-templates or \`fleet workflows list\``);
}

function withVersion(raw: unknown, version: number): unknown {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? { ...(raw as Record<string, unknown>), version: String(version) } : raw;
}

function stripVersion(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const { version, ...rest } = raw as Record<string, unknown>;
  void version;
  return rest;
}

function summaryOf(
  def: WorkflowDefinition,
  o: { builtin: boolean; active: boolean; createdAt: number | null; updatedAt: number | null },
): TemplateSummary {
  return {
    name: def.name,
    version: def.version,
    is_active: o.active,
    builtin: o.builtin,
    description: def.description,
    category: def.category ?? null,
    tags: def.tags ?? [],
    phases: def.phases.length,
    end_action_type: def.endAction?.type ?? 'none',
    created_at: o.createdAt === null ? null : new Date(o.createdAt).toISOString(),
    updated_at: o.updatedAt === null ? null : new Date(o.updatedAt).toISOString(),
  };
}

function summaryFromDetail(d: Omit<TemplateDetail, 'definition'>): TemplateSummary {
  const { template, versions, ...summary } = d;
  void template;
  void versions;
  return summary;
}
