/**
 * API keys and permissions of the HTTP API.
 *
 * Every API key belongs to a user type. The user type `admin` may do everything (manage templates,
 * keys and permissions, run any workflow). Other user types may run the built-in workflows and the
 * templates granted to them, and see only those: a template not granted is not listed and reads as
 * unknown (404), and an `api_call` end action's target shows only its origin (its path and query may
 * hold a token). Keys are stored as SHA-256 hashes only; the plain key is shown once,
 * when it is created, and never logged.
 *
 * Keys (under the fleet prefix):
 * - `<p>:api-keys`             hash: sha256(key) hex → JSON {@link ApiKeyRecord}
 * - `<p>:api-key-ids`          hash: key id → sha256(key) hex
 * - `<p>:permissions`          set of user types that have grants
 * - `<p>:permissions:<type>`   set of template names that user type may run
 *
 * Configured keys (`FLEET_ADMIN_KEY`, `FLEET_API_KEYS`) live in memory only, hashed the same way.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { FleetError } from '../errors.js';

export const ADMIN_USER_TYPE = 'admin';
const USER_TYPE_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

/** What a key stands for. Never holds the key itself. */
export interface ApiKeyRecord {
  /** Public id (`key_…` for created keys, `cfg_…` for configured ones): the `user_id` of the runs it starts. */
  id: string;
  user_type: string;
  name: string;
  /** ISO 8601. */
  created_at: string;
  /** true for keys from the configuration (cannot be deleted through the API). */
  configured: boolean;
}

export interface ConfiguredKey {
  key: string;
  userType: string;
  name?: string;
}

/** SHA-256 of a key, hex: what is stored and compared. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/**
 * Parse `FLEET_API_KEYS`: comma-separated `user_type:key` pairs.
 *
 * @throws FleetError `INVALID_INPUT` naming the variable and the bad entry (without the key).
 */
export function parseConfiguredKeys(value: string | undefined): ConfiguredKey[] {
  if (!value?.trim()) return [];
  return value.split(',').map((entry, i) => {
    const at = entry.indexOf(':');
    const userType = entry.slice(0, at).trim();
    const key = entry.slice(at + 1).trim();
    if (at <= 0 || !USER_TYPE_PATTERN.test(userType) || key.length < 16) {
      throw new FleetError('INVALID_INPUT', `FLEET_API_KEYS entry ${i + 1} must look like user_type:key with a key of at least 16 characters`);
    }
    return { key, userType };
  });
}

export class AccessStore {
  private readonly configured = new Map<string, ApiKeyRecord>();

  /**
   * @param configuredKeys - keys from the configuration; at least one admin key is needed to manage anything.
   */
  constructor(
    readonly redis: Redis,
    readonly prefix: string,
    configuredKeys: readonly ConfiguredKey[] = [],
  ) {
    for (const k of configuredKeys) {
      if (k.key.length < 16) throw new FleetError('INVALID_INPUT', `configured API key for user type "${k.userType}" is shorter than 16 characters`);
      const hash = hashApiKey(k.key);
      this.configured.set(hash, {
        id: `cfg_${hash.slice(0, 12)}`,
        user_type: k.userType,
        name: k.name ?? `configured ${k.userType} key`,
        created_at: new Date(0).toISOString(),
        configured: true,
      });
    }
  }

  get keysKey(): string {
    return `${this.prefix}:api-keys`;
  }
  get keyIdsKey(): string {
    return `${this.prefix}:api-key-ids`;
  }
  get userTypesKey(): string {
    return `${this.prefix}:permissions`;
  }
  grantsKey(userType: string): string {
    return `${this.prefix}:permissions:${userType}`;
  }

  /** The record of a key, or undefined when the key is unknown. */
  async authenticate(key: string | undefined): Promise<ApiKeyRecord | undefined> {
    if (!key) return undefined;
    const hash = hashApiKey(key);
    const configured = this.configured.get(hash);
    if (configured) return configured;
    const raw = await this.redis.hget(this.keysKey, hash);
    return raw ? (JSON.parse(raw) as ApiKeyRecord) : undefined;
  }

  /**
   * Create a key for a user type.
   *
   * @returns the record and the plain key (shown to the caller once; only its hash is stored).
   * @throws FleetError `INVALID_INPUT` for a bad user type.
   */
  async createKey(userType: string, name = '', now = Date.now()): Promise<{ key: string; record: ApiKeyRecord }> {
    checkUserType(userType);
    const key = `fk_${randomBytes(24).toString('base64url')}`;
    const hash = hashApiKey(key);
    const record: ApiKeyRecord = { id: `key_${randomBytes(6).toString('hex')}`, user_type: userType, name, created_at: new Date(now).toISOString(), configured: false };
    await this.redis.multi().hset(this.keysKey, hash, JSON.stringify(record)).hset(this.keyIdsKey, record.id, hash).exec();
    return { key, record };
  }

  /** Every key's record (configured ones first); never the keys. */
  async listKeys(): Promise<ApiKeyRecord[]> {
    const stored = Object.values(await this.redis.hgetall(this.keysKey)).map((v) => JSON.parse(v) as ApiKeyRecord);
    return [...this.configured.values(), ...stored.sort((a, b) => a.created_at.localeCompare(b.created_at))];
  }

  /** Delete a created key (configured keys cannot be). @returns false when there is no such key. */
  async deleteKey(id: string): Promise<boolean> {
    const hash = await this.redis.hget(this.keyIdsKey, id);
    if (!hash) return false;
    await this.redis.multi().hdel(this.keysKey, hash).hdel(this.keyIdsKey, id).exec();
    return true;
  }

  /** Grant a user type the use of a template. @returns false when it was already granted. */
  async grant(userType: string, template: string): Promise<boolean> {
    checkUserType(userType);
    const [[, added] = [null, 0]] = (await this.redis.multi().sadd(this.grantsKey(userType), template).sadd(this.userTypesKey, userType).exec()) ?? [];
    return added === 1;
  }

  /** @returns false when there was no such grant. */
  async revoke(userType: string, template: string): Promise<boolean> {
    return (await this.redis.srem(this.grantsKey(userType), template)) === 1;
  }

  /** Every grant, by user type then template. */
  async listGrants(userType?: string): Promise<Array<{ user_type: string; template: string }>> {
    const types = userType ? [userType] : (await this.redis.smembers(this.userTypesKey)).sort();
    const out: Array<{ user_type: string; template: string }> = [];
    for (const t of types) for (const template of (await this.redis.smembers(this.grantsKey(t))).sort()) out.push({ user_type: t, template });
    return out;
  }

  /**
   * The registered templates a user type may see and run: `all` for admins, else the names granted
   * to it (built-ins are open to every key and not listed here).
   */
  async grantedTemplates(userType: string): Promise<'all' | ReadonlySet<string>> {
    if (userType === ADMIN_USER_TYPE) return 'all';
    return new Set(await this.redis.smembers(this.grantsKey(userType)));
  }

  /** Whether a user type may run a template (admins may run anything; built-ins are open to every key). */
  async canUse(userType: string, template: string, builtin: boolean): Promise<boolean> {
    if (userType === ADMIN_USER_TYPE || builtin) return true;
    return (await this.redis.sismember(this.grantsKey(userType), template)) === 1;
  }
}

function checkUserType(userType: string): void {
  if (!USER_TYPE_PATTERN.test(userType)) {
    throw new FleetError('INVALID_INPUT', `user_type "${userType}" must start with a letter and use only letters, digits, "_" or "-"`);
  }
}
