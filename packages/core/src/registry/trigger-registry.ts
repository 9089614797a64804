/**
 * Inbound triggers: named definitions that turn an HTTP request (`POST /api/triggers/:name`) into a
 * run of a workflow, its body mapped into the run's requirements and variables by templates.
 *
 * Keys (under the fleet prefix):
 * - `<p>:triggers`                          hash: trigger name → JSON {@link StoredTrigger} (secret included)
 * - `<p>:trigger:<name>:delivery:<id>`      a delivery id seen (SET NX, expires after {@link seenTtlS})
 * - `<p>:trigger:<name>:signature:<sha256>` a signature seen, so a captured request cannot come back
 *                                           under a new delivery id
 * - `<p>:trigger:<name>:debounce:<key>`     the run of the current burst of a debounced trigger
 *
 * The templates are the workflow templates' syntax (`{{body.issue.title}}`, `{{body.items[0]}}`,
 * see ../workflow/template.ts) over `body` (the request's JSON body), `trigger` (`{name}`) and
 * `delivery_id`; single pass, inserted literally.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { FleetError } from '../errors.js';
import { luaCommand } from '../store/lua-command.js';
import { submissionFingerprint } from '../store/idempotency.js';
import { parsePath, type TemplateContext } from '../workflow/context.js';
import { renderTemplate } from '../workflow/template.js';

/** Trigger names: what `POST /api/triggers/<name>` takes. */
export const TRIGGER_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** What a trigger's templates may refer to. */
const TEMPLATE_HEADS = ['body', 'trigger', 'delivery_id'] as const;
/** Shortest trigger secret accepted, characters. */
export const MIN_TRIGGER_SECRET_LENGTH = 16;

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

/** A trigger as an admin defines it (`PUT /api/triggers/:name`, `fleet triggers add`). */
export const TriggerInputSchema = z.strictObject({
  workflow: z.string().min(1).describe('the template or built-in workflow each delivery starts'),
  requirements_template: z
    .string()
    .min(1)
    .max(64 * 1024)
    .describe('the run\'s requirements, e.g. "Fix: {{body.issue.title}}\\n\\n{{body.issue.body}}"'),
  variables: z.record(z.string().regex(VARIABLE_NAME, 'a variable name: letters, digits, _ and -'), z.string().max(16 * 1024)).default({}).describe('variable name → template, e.g. {"repo": "{{body.repository.full_name}}"}'),
  secret: z.string().min(MIN_TRIGGER_SECRET_LENGTH, `the secret must be at least ${MIN_TRIGGER_SECRET_LENGTH} characters (openssl rand -hex 32)`).max(512).optional().describe('HMAC key of signed deliveries; without one, only API keys may fire the trigger'),
  debounce: z
    .strictObject({
      key: z.string().min(1).max(1024).describe('template of the burst key, e.g. "{{body.repository.full_name}}"'),
      period_s: z.number().int().min(1).max(86_400).describe('a delivery within this many seconds of the previous one with the same key joins its run'),
    })
    .optional()
    .describe('one run per burst of deliveries with the same key'),
  description: z.string().max(1000).default(''),
});
export type TriggerInput = z.input<typeof TriggerInputSchema>;

/** A stored trigger (the secret is never shown: see {@link TriggerView}). */
export interface StoredTrigger {
  name: string;
  workflow: string;
  requirements_template: string;
  variables: Record<string, string>;
  secret: string | null;
  debounce: { key: string; period_s: number } | null;
  description: string;
  /** Epoch ms. */
  created_at: number;
  updated_at: number;
}

/** A trigger as listed and shown: the secret replaced by whether there is one. */
export type TriggerView = Omit<StoredTrigger, 'secret' | 'created_at' | 'updated_at'> & { has_secret: boolean; created_at: string; updated_at: string };

/** What a delivery maps to. */
export interface RenderedTrigger {
  requirements: string;
  variables: Record<string, string>;
  /** The debounce key, when the trigger debounces. */
  debounceKey: string | undefined;
}

/** A trigger's view for the API and the CLI (no secret). */
export function viewTrigger(t: StoredTrigger): TriggerView {
  const { secret, created_at, updated_at, ...rest } = t;
  return { ...rest, has_secret: secret !== null, created_at: new Date(created_at).toISOString(), updated_at: new Date(updated_at).toISOString() };
}

/** A random trigger secret: 32 bytes, hex. */
export function generateTriggerSecret(): string {
  return randomBytes(32).toString('hex');
}

/**
 * Map a delivery's body into requirements and variables with the trigger's templates.
 *
 * @throws FleetError `INVALID_INPUT` when the requirements come out empty (naming the template).
 */
export function renderTrigger(trigger: StoredTrigger, body: unknown, deliveryId: string): RenderedTrigger {
  const ctx: TemplateContext = { requirements: '', variables: {}, outputs: { body, trigger: { name: trigger.name }, delivery_id: deliveryId }, errors: [] };
  const requirements = renderTemplate(trigger.requirements_template, ctx);
  if (requirements.trim().length === 0) {
    throw new FleetError('INVALID_INPUT', `trigger "${trigger.name}": its requirements_template ${JSON.stringify(trigger.requirements_template)} gave empty requirements for this body; send the fields it names`);
  }
  const variables = Object.fromEntries(Object.entries(trigger.variables).map(([k, t]) => [k, renderTemplate(t, ctx)]));
  const debounceKey = trigger.debounce ? renderTemplate(trigger.debounce.key, ctx) : undefined;
  return { requirements, variables, debounceKey };
}

/** @throws FleetError `INVALID_INPUT` naming the field and the reference that is not `body…`, `trigger…` or `delivery_id`. */
function checkTemplateRefs(field: string, text: string): void {
  for (const m of text.matchAll(/\{\{\s*([^{}]*?)\s*\}\}/g)) {
    const ref = parsePath(m[1] ?? '');
    if (!ref || !(TEMPLATE_HEADS as readonly string[]).includes(ref.head)) {
      throw new FleetError('INVALID_INPUT', `${field}: "${m[0]}" is not a reference to the request; use {{body.<field>}} (nested paths and [n] indexes), {{trigger.name}} or {{delivery_id}}`, {
        details: { issues: [{ path: field, message: `unknown reference ${m[0]}` }] },
      });
    }
  }
}

/** Record a delivery id and a signature as seen, unless either was; returns which was seen, or false. */
const SEEN_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'delivery' end
if KEYS[2] ~= KEYS[1] and redis.call('EXISTS', KEYS[2]) == 1 then return 'signature' end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
if KEYS[2] ~= KEYS[1] then redis.call('SET', KEYS[2], '1', 'EX', ARGV[1]) end
return false
`;

/** The run of a burst: claim KEYS[1] for ARGV[1], or extend the burst of the run that holds it. */
const DEBOUNCE_LUA = `
local cur = redis.call('GET', KEYS[1])
if cur then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return cur end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
`;

/** Drop KEYS[1] when it still names run ARGV[1]. */
const DEBOUNCE_RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

type SeenScript = (deliveryKey: string, signatureKey: string, ttlS: string) => Promise<string | null>;
type DebounceScript = (key: string, runId: string, periodMs: string) => Promise<string | null>;

/**
 * How long seen delivery ids are kept, s: longer than a timestamp can stay valid (the tolerance on
 * either side of the clock), so a replay is refused for as long as its signature would pass.
 */
export function seenTtlS(toleranceS: number): number {
  return 2 * toleranceS + 60;
}

export class TriggerRegistry {
  private readonly seenScript: SeenScript;
  private readonly debounceScript: DebounceScript;
  private readonly debounceReleaseScript: (key: string, runId: string) => Promise<number>;

  /**
   * @param redis - a connection for ordinary commands.
   * @param prefix - the fleet's key prefix (`FLEET_QUEUE_PREFIX`).
   */
  constructor(
    readonly redis: Redis,
    readonly prefix: string,
  ) {
    this.seenScript = luaCommand<SeenScript>(redis, 'fleetTriggerSeen', 2, SEEN_LUA);
    this.debounceScript = luaCommand<DebounceScript>(redis, 'fleetTriggerDebounce', 1, DEBOUNCE_LUA);
    this.debounceReleaseScript = luaCommand(redis, 'fleetTriggerDebounceRelease', 1, DEBOUNCE_RELEASE_LUA);
  }

  get key(): string {
    return `${this.prefix}:triggers`;
  }

  /**
   * Define (or replace) a trigger. The workflow is not checked here (the caller checks it exists).
   *
   * @throws FleetError `INVALID_INPUT` naming the bad field: a name outside {@link TRIGGER_NAME_PATTERN},
   *   a schema violation, or a template reference that is not to the request.
   */
  async put(name: string, raw: unknown, now: number = Date.now()): Promise<{ trigger: StoredTrigger; created: boolean }> {
    if (!TRIGGER_NAME_PATTERN.test(name)) throw new FleetError('INVALID_INPUT', `trigger name "${name}": use 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`);
    const parsed = TriggerInputSchema.safeParse(raw);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.') || '(body)', message: i.message }));
      throw new FleetError('INVALID_INPUT', `trigger "${name}": ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, { details: { issues } });
    }
    const input = parsed.data;
    checkTemplateRefs('requirements_template', input.requirements_template);
    for (const [k, t] of Object.entries(input.variables)) checkTemplateRefs(`variables.${k}`, t);
    if (input.debounce) checkTemplateRefs('debounce.key', input.debounce.key);
    const existing = await this.find(name);
    const trigger: StoredTrigger = {
      name,
      workflow: input.workflow,
      requirements_template: input.requirements_template,
      variables: input.variables,
      // Replacing a trigger without a secret keeps the one it had: rotating it is an explicit act.
      secret: input.secret ?? existing?.secret ?? null,
      debounce: input.debounce ?? null,
      description: input.description,
      created_at: existing?.created_at ?? now,
      updated_at: now,
    };
    await this.redis.hset(this.key, name, JSON.stringify(trigger));
    return { trigger, created: !existing };
  }

  /** The trigger, or undefined. */
  async find(name: string): Promise<StoredTrigger | undefined> {
    const raw = await this.redis.hget(this.key, name);
    return raw ? (JSON.parse(raw) as StoredTrigger) : undefined;
  }

  /** @throws FleetError `NOT_FOUND` naming the triggers there are. */
  async get(name: string): Promise<StoredTrigger> {
    const t = await this.find(name);
    if (!t) {
      const names = (await this.redis.hkeys(this.key)).sort();
      throw new FleetError('NOT_FOUND', `no trigger "${name}"; ${names.length > 0 ? `triggers: ${names.join(', ')}` : 'define one with `fleet triggers add` or PUT /api/triggers/:name'}`);
    }
    return t;
  }

  /** Every trigger, by name. */
  async list(): Promise<StoredTrigger[]> {
    const all = await this.redis.hvals(this.key);
    return all.map((v) => JSON.parse(v) as StoredTrigger).sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** @returns false when there was no such trigger. */
  async remove(name: string): Promise<boolean> {
    return (await this.redis.hdel(this.key, name)) === 1;
  }

  /**
   * Record a signed delivery as seen, atomically, by its delivery id and by its signature.
   *
   * @param ttlS - how long to remember it, s ({@link seenTtlS} of the tolerance).
   * @returns `'delivery'` or `'signature'` when it was seen before (a replay), else false.
   */
  async markSeen(name: string, deliveryId: string, signature: string | undefined, ttlS: number): Promise<'delivery' | 'signature' | false> {
    const deliveryKey = `${this.prefix}:trigger:${name}:delivery:${deliveryId}`;
    const signatureKey = signature ? `${this.prefix}:trigger:${name}:signature:${submissionFingerprint(signature)}` : deliveryKey;
    const seen = await this.seenScript(deliveryKey, signatureKey, String(ttlS));
    return seen === 'delivery' || seen === 'signature' ? seen : false;
  }

  /** Forget a delivery marked seen whose run could not be started, so the sender's retry of it is accepted. */
  async unmarkSeen(name: string, deliveryId: string, signature: string | undefined): Promise<void> {
    const keys = [`${this.prefix}:trigger:${name}:delivery:${deliveryId}`];
    if (signature) keys.push(`${this.prefix}:trigger:${name}:signature:${submissionFingerprint(signature)}`);
    // One key per command: the keys share the fleet's hash tag, but a DEL of several is refused across slots without one.
    for (const k of keys) await this.redis.del(k);
  }

  /**
   * Join the current burst of a debounced trigger, or start one with `runId`.
   *
   * @param periodMs - the burst goes on while deliveries come less than this apart, ms.
   * @returns the run of the burst already going, or undefined when `runId` starts a new one.
   */
  async debounce(name: string, key: string, runId: string, periodMs: number): Promise<string | undefined> {
    const reply = await this.debounceScript(this.debounceKey(name, key), runId, String(periodMs));
    return reply ?? undefined;
  }

  /** End a burst that `runId` started but could not be created, so the next delivery starts a run. */
  async releaseDebounce(name: string, key: string, runId: string): Promise<void> {
    await this.debounceReleaseScript(this.debounceKey(name, key), runId);
  }

  private debounceKey(name: string, key: string): string {
    return `${this.prefix}:trigger:${name}:debounce:${submissionFingerprint(key)}`;
  }
}
