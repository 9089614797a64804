/**
 * What the HTTP API and end actions record beside a run: who started it, for which conversation and
 * template, which run started it, and how its end action went. Kept apart from the run record so the
 * scheduler's state stays its own.
 *
 * Keys (under the fleet prefix):
 * - `<p>:run:<id>:labels`            hash: `user_id`, `conversation_id`, `template`, `parent_run_id`,
 *                                    `schedule`, `schedule_fire_time`, `trigger`, `artifacts_dir`, `end_action` (JSON {@link EndActionStatus})
 * - `<p>:conversation:<cid>`         the run id that holds the conversation (see {@link RunLabelStore.claimConversation})
 */
import type { Redis } from 'ioredis';
import { luaCommand } from '../store/lua-command.js';

/**
 * Claim a conversation for a new run, atomically: refused (returns the holder) when the conversation
 * is held by a run that is not finished, or by a claim still being turned into a run (it expires after
 * ARGV[3] ms). Reads the holder's run record, which shares the fleet's hash tag.
 */
const CLAIM_LUA = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local state = redis.call('HGET', ARGV[2] .. ':run:' .. cur, 'state')
  if state then
    local status = cjson.decode(state).status
    if status ~= 'completed' and status ~= 'failed' and status ~= 'cancelled' then return cur end
  elseif redis.call('PTTL', KEYS[1]) > 0 then
    return cur
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return false
`;

/**
 * Keep a claim once its run exists, or drop it when the run could not be created (KEYS[2]: the run
 * key). A kept claim lasts as long as the run: no expiry while it goes, the run's expiry once it
 * finished (a fast run can finish before its claim is settled; later, the finishing commit sets it).
 */
const SETTLE_LUA = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '1' then
  local ttl = redis.call('PTTL', KEYS[2])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) else redis.call('PERSIST', KEYS[1]) end
else
  redis.call('DEL', KEYS[1])
end
return 1
`;

/**
 * The claim of conversation `conversationId` of the key `userId`: conversations belong to the key's
 * user, so another user's conversation of the same name is a different one. The run's retention
 * (store/retention.ts) finds the claim from the run's labels under this same name.
 */
export function conversationScope(userId: string, conversationId: string): string {
  return `${userId}:${conversationId}`;
}

export interface RunLabels {
  /** Id of the API key that started the run. */
  user_id?: string;
  conversation_id?: string;
  /** Template (or built-in workflow) name the run was started from. */
  template?: string;
  /** The run whose `workflow` end action started this one. */
  parent_run_id?: string;
  /** The schedule that started the run. */
  schedule?: string;
  /** The fire time the run stands for (ISO 8601). */
  schedule_fire_time?: string;
  /** The trigger whose delivery started the run (`POST /api/triggers/:name`). */
  trigger?: string;
  /** Absolute path where `fleet run` (or a followed resume or rerun) wrote the run's artifacts, on that machine. */
  artifacts_dir?: string;
}

/** How a run's end action went; shown beside the run's own status, never instead of it. */
export interface EndActionStatus {
  type: 'api_call' | 'workflow' | 'tool_call';
  target: string;
  status: 'pending' | 'succeeded' | 'failed' | 'skipped';
  attempts: number;
  last_error: string | null;
  /** HTTP status of the last webhook attempt. */
  status_code?: number;
  /** The run a `workflow` end action started. */
  child_run_id?: string;
  /** ISO 8601. */
  updated_at: string;
}

type Script = (...args: string[]) => Promise<string | number | null>;

export class RunLabelStore {
  private readonly claimScript: Script;
  private readonly settleScript: Script;

  constructor(
    readonly redis: Redis,
    readonly prefix: string,
  ) {
    this.claimScript = luaCommand<Script>(redis, 'fleetConversationClaim', 1, CLAIM_LUA);
    this.settleScript = luaCommand<Script>(redis, 'fleetConversationSettle', 2, SETTLE_LUA);
  }

  labelsKey(runId: string): string {
    return `${this.prefix}:run:${runId}:labels`;
  }
  conversationKey(conversationId: string): string {
    return `${this.prefix}:conversation:${conversationId}`;
  }

  async set(runId: string, labels: RunLabels): Promise<void> {
    const pairs = Object.entries(labels).filter(([, v]) => v !== undefined) as Array<[string, string]>;
    if (pairs.length > 0) await this.redis.hset(this.labelsKey(runId), ...pairs.flat());
  }

  async get(runId: string): Promise<RunLabels & { end_action?: EndActionStatus }> {
    const raw = await this.redis.hgetall(this.labelsKey(runId));
    const { end_action: endAction, ...labels } = raw;
    return { ...labels, ...(endAction ? { end_action: JSON.parse(endAction) as EndActionStatus } : {}) };
  }

  /** Labels of many runs in one round trip (`user_id`, `conversation_id`, `template`, `parent_run_id`, `schedule`). */
  async getMany(runIds: readonly string[]): Promise<RunLabels[]> {
    const pipe = this.redis.pipeline();
    for (const id of runIds) pipe.hmget(this.labelsKey(id), 'user_id', 'conversation_id', 'template', 'parent_run_id', 'schedule');
    const replies = (await pipe.exec()) ?? [];
    return replies.map(([, value]) => {
      const [userId, conversationId, template, parent, schedule] = (value as Array<string | null> | undefined) ?? [];
      return {
        ...(userId ? { user_id: userId } : {}),
        ...(conversationId ? { conversation_id: conversationId } : {}),
        ...(template ? { template } : {}),
        ...(parent ? { parent_run_id: parent } : {}),
        ...(schedule ? { schedule } : {}),
      };
    });
  }

  /**
   * Record where the run's artifacts were written. The labels hash takes the run record's expiry
   * (a finished run's keys expire together; a label written after the finish must too).
   *
   * @param runKey - the run's record key (`RunStore.runKey(runId)`).
   */
  async setArtifactsDir(runId: string, dir: string, runKey: string): Promise<void> {
    const key = this.labelsKey(runId);
    await this.redis.hset(key, 'artifacts_dir', dir);
    const ttl = await this.redis.pttl(runKey);
    if (ttl > 0) await this.redis.pexpire(key, ttl);
  }

  async setEndAction(runId: string, status: EndActionStatus): Promise<void> {
    await this.redis.hset(this.labelsKey(runId), 'end_action', JSON.stringify(status));
  }

  /**
   * Claim a conversation for `runId` before the run is created.
   *
   * @param pendingMs - how long the claim holds without a run behind it (a crashed submit frees it).
   * @returns undefined when claimed; otherwise the id of the run that holds the conversation.
   */
  async claimConversation(conversationId: string, runId: string, pendingMs = 30_000): Promise<string | undefined> {
    const holder = await this.claimScript(this.conversationKey(conversationId), runId, this.prefix, String(pendingMs));
    return typeof holder === 'string' ? holder : undefined;
  }

  /** Keep the claim (`created` true: the run exists) or release it (the run could not be created). */
  async settleConversation(conversationId: string, runId: string, created: boolean): Promise<void> {
    await this.settleScript(this.conversationKey(conversationId), `${this.prefix}:run:${runId}`, runId, created ? '1' : '0');
  }
}
