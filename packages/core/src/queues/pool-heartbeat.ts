/**
 * Agent pools announce themselves in Redis, so `fleet workers` can say how many processes serve each
 * role and with what concurrency.
 *
 * Key `<prefix>:pools` is a hash: field `<role>|<instance>` → JSON {@link PoolHeartbeat}. Each pool
 * process rewrites its fields every `intervalMs` and deletes them on close; readers ignore (and
 * delete) entries older than three intervals, so a process that died without a word drops out. The
 * whole key expires when no pool has written for a minute.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';

/** Suffix of the pools hash under the fleet prefix. */
export const POOLS_KEY_SUFFIX = 'pools';

/** What one pool process says about one role it serves. */
export interface PoolHeartbeat {
  role: string;
  /** Unique per pool process (random UUID). */
  instance: string;
  host: string;
  pid: number;
  /** Jobs of this role this process runs at once. */
  concurrency: number;
  /** When this was written, epoch ms. */
  at: number;
  /** Heartbeat interval, ms: entries older than 3 × this are stale. */
  interval_ms: number;
}

/** What {@link startPoolHeartbeat} returns. */
export interface PoolHeartbeatHandle {
  /** Stop beating and remove this process's entries. Never rejects. */
  stop(): Promise<void>;
}

const DEFAULT_INTERVAL_MS = 5000;

function poolsKey(prefix: string): string {
  return `${prefix}:${POOLS_KEY_SUFFIX}`;
}

/**
 * Announce a pool process serving `roles` with `concurrency` slots each, now and every `intervalMs`.
 * Write failures are ignored (the next beat tries again).
 */
export function startPoolHeartbeat(
  redis: Redis,
  prefix: string,
  roles: readonly string[],
  concurrency: number,
  intervalMs = DEFAULT_INTERVAL_MS,
): PoolHeartbeatHandle {
  const instance = randomUUID();
  const host = hostname();
  const fields = roles.map((role) => `${role}|${instance}`);
  const beat = async () => {
    const at = Date.now();
    const args = roles.flatMap((role, i) => {
      const value: PoolHeartbeat = { role, instance, host, pid: process.pid, concurrency, at, interval_ms: intervalMs };
      return [fields[i] as string, JSON.stringify(value)];
    });
    if (args.length === 0) return;
    await redis.multi().hset(poolsKey(prefix), ...args).pexpire(poolsKey(prefix), Math.max(60_000, intervalMs * 12)).exec();
  };
  void beat().catch(() => undefined);
  const timer = setInterval(() => void beat().catch(() => undefined), intervalMs);
  timer.unref();
  let stopped: Promise<void> | undefined;
  return {
    stop() {
      clearInterval(timer);
      stopped ??= (fields.length > 0 ? redis.hdel(poolsKey(prefix), ...fields) : Promise.resolve(0)).then(
        () => undefined,
        () => undefined,
      );
      return stopped;
    },
  };
}

/**
 * The live heartbeats of every pool process, stale entries dropped (and deleted).
 *
 * @param now - epoch ms to judge staleness against.
 */
export async function readPoolHeartbeats(redis: Redis, prefix: string, now = Date.now()): Promise<PoolHeartbeat[]> {
  const all = await redis.hgetall(poolsKey(prefix));
  const live: PoolHeartbeat[] = [];
  const stale: string[] = [];
  for (const [field, raw] of Object.entries(all)) {
    try {
      const hb = JSON.parse(raw) as PoolHeartbeat;
      if (now - hb.at > 3 * (hb.interval_ms || DEFAULT_INTERVAL_MS)) stale.push(field);
      else live.push(hb);
    } catch {
      stale.push(field);
    }
  }
  if (stale.length > 0) await redis.hdel(poolsKey(prefix), ...stale).catch(() => 0);
  return live;
}
