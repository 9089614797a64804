/**
 * Idempotency keys for submissions: a repeat of a submission with the same key (within 24 h) gets the
 * first run back instead of a second run; a repeat with a different body is refused.
 *
 * Key (under the fleet prefix): `<p>:idempotency:<sha256 hex of the key>`, a JSON record
 * `{fingerprint, run_id, at, created}` that expires {@link IDEMPOTENCY_TTL_MS} after its claim.
 *
 * The record is claimed (SET NX) *before* the run is created, with the run id the new run will get,
 * so two concurrent repeats cannot both create a run: the second sees the claim. Once the run exists
 * the claim is settled (`created: true`). A claim whose run never came (its submitter died between
 * the claim and the run's creation) is taken over by a repeat after {@link STALE_CLAIM_MS}.
 * Modelled on the IETF draft "The Idempotency-Key HTTP Header Field"
 * (https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/).
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { luaCommand } from './lua-command.js';

/** How long a key is remembered, ms (24 h). */
export const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;
/** An unsettled claim older than this (ms) whose run does not exist is taken over by a repeat. */
export const STALE_CLAIM_MS = 30_000;
/** Longest idempotency key accepted, characters. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/** Claim KEYS[1] with ARGV[1] unless it is held; returns the holder's record, or false when claimed. */
const CLAIM_LUA = `
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
`;

/** Replace the record ARGV[1] by ARGV[2] (a takeover, or settling it); 1 when it was still ARGV[1]. */
const SWAP_LUA = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) return 1 end
if ARGV[3] == '' then redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return 1
`;

interface IdempotencyRecord {
  fingerprint: string;
  run_id: string;
  /** Epoch ms of the claim. */
  at: number;
  created: boolean;
}

/** What a claim found. */
export type IdempotencyClaim =
  /** The key is now held for `runId`: create that run, then {@link IdempotencyStore.settle} (or {@link IdempotencyStore.release} on failure). */
  | { outcome: 'claimed'; runId: string; token: string }
  /** The same submission was made before: its run. */
  | { outcome: 'repeat'; runId: string }
  /** The key was used for a different submission (its run). */
  | { outcome: 'mismatch'; runId: string }
  /** The first submission with this key is still being created. */
  | { outcome: 'in_progress'; runId: string };

/**
 * The fingerprint of a submission: SHA-256 hex of its canonical JSON (object keys sorted), so the
 * same fields in another order are the same submission.
 */
export function submissionFingerprint(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

type ClaimScript = (key: string, record: string, ttlMs: string) => Promise<string | null>;
type SwapScript = (key: string, expected: string, next: string, ttlMs: string) => Promise<number>;

export class IdempotencyStore {
  private readonly claimScript: ClaimScript;
  private readonly swapScript: SwapScript;

  /**
   * @param redis - a connection for ordinary commands.
   * @param prefix - the fleet's key prefix (`FLEET_QUEUE_PREFIX`).
   * @param runExists - whether a run id has a run record (a claim's run may not exist yet).
   */
  constructor(
    readonly redis: Redis,
    readonly prefix: string,
    private readonly runExists: (runId: string) => Promise<boolean>,
  ) {
    this.claimScript = luaCommand<ClaimScript>(redis, 'fleetIdempotencyClaim', 1, CLAIM_LUA);
    this.swapScript = luaCommand<SwapScript>(redis, 'fleetIdempotencySwap', 1, SWAP_LUA);
  }

  /** The Redis key of an idempotency key (hashed: keys are the caller's text, of any characters). */
  keyOf(idempotencyKey: string): string {
    return `${this.prefix}:idempotency:${createHash('sha256').update(idempotencyKey).digest('hex')}`;
  }

  /**
   * Claim `idempotencyKey` for a new run `runId`, or find the run an earlier submission with it made.
   *
   * @param fingerprint - {@link submissionFingerprint} of the submission.
   * @param nowMs - the clock, epoch ms.
   */
  async claim(idempotencyKey: string, fingerprint: string, runId: string, nowMs: number = Date.now()): Promise<IdempotencyClaim> {
    const key = this.keyOf(idempotencyKey);
    const mine = JSON.stringify({ fingerprint, run_id: runId, at: nowMs, created: false } satisfies IdempotencyRecord);
    for (let tries = 0; tries < 3; tries++) {
      const held = await this.claimScript(key, mine, String(IDEMPOTENCY_TTL_MS));
      if (held === null) return { outcome: 'claimed', runId, token: mine };
      const record = JSON.parse(held) as IdempotencyRecord;
      if (record.fingerprint !== fingerprint) return { outcome: 'mismatch', runId: record.run_id };
      if (record.created || (await this.runExists(record.run_id))) return { outcome: 'repeat', runId: record.run_id };
      if (nowMs - record.at < STALE_CLAIM_MS) return { outcome: 'in_progress', runId: record.run_id };
      // The first submitter died before its run existed: take the key over (if nobody else did).
      if ((await this.swapScript(key, held, mine, String(IDEMPOTENCY_TTL_MS))) === 1) return { outcome: 'claimed', runId, token: mine };
    }
    return { outcome: 'in_progress', runId };
  }

  /** Mark a claim's run as created (the record keeps its expiry). */
  async settle(idempotencyKey: string, claim: { token: string }): Promise<void> {
    const record = JSON.parse(claim.token) as IdempotencyRecord;
    await this.swapScript(this.keyOf(idempotencyKey), claim.token, JSON.stringify({ ...record, created: true }), '');
  }

  /** Drop a claim whose run could not be created, so a retry with the key can create it. */
  async release(idempotencyKey: string, claim: { token: string }): Promise<void> {
    await this.swapScript(this.keyOf(idempotencyKey), claim.token, '', '');
  }
}
