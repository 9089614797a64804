/**
 * Where batch-mode calls keep their batch ids, durably, and the index of open batches the manager
 * polls:
 *
 * - `<p>:run:<id>:batches` (hash, lives and expires with the run): `<key>` → the {@link BatchRecord}
 *   JSON of the call `<key>` ({@link batchCallKey}); `<key>:member` → its
 *   entry in the open index; `<key>:delivered` → set once its result was handed out; `<key>:intent`
 *   → the {@link BatchIntent} written before the batch was submitted (see `generateInBatch`).
 * - `<p>:batches:open` (sorted set): one member per submitted batch not yet handed out, scored by
 *   when the manager should next ask about it (epoch ms).
 *
 * The first record for a key stands: a worker that takes the attempt again finds it and submits no
 * second batch.
 */
import type { Redis } from 'ioredis';
import type { BatchCall, BatchIntent, BatchRecord, BatchRecordStore } from '../llm/types.js';
import { storeCommand } from './commands.js';

/** One open batch, as the manager's poller sees it. */
export interface OpenBatch {
  run_id: string;
  phase: string;
  iteration: number;
  attempt: number;
  /** The role whose queue holds the phase job. */
  role: string;
  key: string;
  batch_id: string;
  /** The member's text in the index (to re-score or drop it). */
  member: string;
}

/** The key of one batch-mode call: `<run>|<phase>.<iteration>.<attempt>.<call index>`. */
export function batchCallKey(runId: string, phase: string, iteration: number, attempt: number, call: number): string {
  return `${runId}|${phase}.${iteration}.${attempt}.${call}`;
}

type ClaimDue = (key: string, now: string, leaseEnd: string, limit: string) => Promise<string[]>;

export class BatchStore implements BatchRecordStore {
  private readonly claimDue: ClaimDue;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    this.claimDue = storeCommand<ClaimDue>(redis, 'claimDue');
  }

  private runKey(runId: string): string {
    return `${this.prefix}:run:${runId}:batches`;
  }

  /** The sorted set of open batches. */
  get openKey(): string {
    return `${this.prefix}:batches:open`;
  }

  /** The run a call key belongs to: what precedes its last `|` (see {@link batchCallKey}). */
  private runOf(key: string): string {
    return key.slice(0, key.lastIndexOf('|'));
  }

  async get(key: string): Promise<BatchRecord | undefined> {
    const raw = await this.redis.hget(this.runKey(this.runOf(key)), key);
    return raw === null ? undefined : (JSON.parse(raw) as BatchRecord);
  }

  async intend(key: string, intent: BatchIntent): Promise<BatchIntent & { fresh: boolean }> {
    const hash = this.runKey(this.runOf(key));
    const reply = await this.redis.multi().hsetnx(hash, `${key}:intent`, JSON.stringify(intent)).hget(hash, `${key}:intent`).exec();
    const stored = reply?.[1]?.[1];
    const standing = typeof stored === 'string' ? (JSON.parse(stored) as BatchIntent) : intent;
    return { ...standing, fresh: reply?.[0]?.[1] === 1 };
  }

  async reintend(key: string, intent: BatchIntent): Promise<void> {
    await this.redis.hset(this.runKey(this.runOf(key)), `${key}:intent`, JSON.stringify(intent));
  }

  async put(key: string, record: BatchRecord, owner: BatchCall['owner']): Promise<BatchRecord> {
    const hash = this.runKey(owner.run_id);
    const member = JSON.stringify({ ...owner, key, batch_id: record.batch_id });
    const reply = await this.redis
      .multi()
      .hsetnx(hash, key, JSON.stringify(record))
      .hsetnx(hash, `${key}:member`, member)
      // A batch that lost the race is indexed too: the poller finds nobody waits on it and drops it.
      .zadd(this.openKey, String(record.submitted_at), member)
      .hget(hash, key)
      .exec();
    const stored = reply?.[3]?.[1];
    return typeof stored === 'string' ? (JSON.parse(stored) as BatchRecord) : record;
  }

  async deliver(key: string, _record: BatchRecord): Promise<boolean> {
    const hash = this.runKey(this.runOf(key));
    const reply = await this.redis.multi().hsetnx(hash, `${key}:delivered`, '1').hget(hash, `${key}:member`).exec();
    const member = reply?.[1]?.[1];
    if (typeof member === 'string') await this.redis.zrem(this.openKey, member);
    return reply?.[0]?.[1] === 1;
  }

  /**
   * Take up to `limit` open batches due by `now` (epoch ms), leased until `leaseEnd`: another
   * manager does not take them before then; a lease that runs out makes them due again.
   */
  async claimOpen(now: number, leaseEnd: number, limit = 100): Promise<OpenBatch[]> {
    const members = await this.claimDue(this.openKey, String(now), String(leaseEnd), String(limit));
    return members.map((member) => ({ ...(JSON.parse(member) as Omit<OpenBatch, 'member'>), member }));
  }

  /** Ask about `batch` again at `at` (epoch ms). */
  async reschedule(batch: OpenBatch, at: number): Promise<void> {
    await this.redis.zadd(this.openKey, 'XX', String(at), batch.member);
  }

  /** Drop `batch` from the index (nobody waits on it any more). */
  async drop(batch: OpenBatch): Promise<void> {
    await this.redis.zrem(this.openKey, batch.member);
  }
}
