/** Redis for the benchmarks: a private server (so memory figures are ours alone), sizes, cleanup. */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

export interface BenchRedis {
  url: string;
  /** Stop the server when we started it; no-op for a given URL. */
  stop(): Promise<void>;
}

/** Start `redis-server` from PATH on a free port, without persistence, `noeviction`. */
export async function startPrivateRedis(): Promise<BenchRedis> {
  const port = await new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], {
    stdio: 'ignore',
  });
  const failed = new Promise<never>((_, reject) => child.once('error', (e) => reject(new Error(`cannot start redis-server (install it, or pass --redis-url): ${e.message}`))));
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => undefined);
    const ok = await Promise.race([r.connect().then(() => r.ping()).then(() => true, () => false), failed]);
    r.disconnect();
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer within 10 s`);
    await new Promise((res) => setTimeout(res, 50));
  }
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((res) => child.once('exit', res));
    },
  };
}

/** Redis `used_memory`, bytes. */
export async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

/** CPU time the Redis server has used so far, user + system, ms (`INFO cpu`: `used_cpu_sys`, `used_cpu_user`, seconds). */
export async function redisCpuMs(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return (field('used_cpu_sys') + field('used_cpu_user')) * 1000;
}

/** Calls and time so far by command (`INFO commandstats`: `cmdstat_<name>:calls=N,usec=N,…`; usec µs). */
export async function commandStats(redis: Redis): Promise<Map<string, { calls: number; usec: number }>> {
  const info = await redis.info('commandstats');
  const stats = new Map<string, { calls: number; usec: number }>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    stats.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return stats;
}

/** Delete every key under `prefix` (SCAN + UNLINK). */
export async function deletePrefix(redis: Redis, prefix: string): Promise<number> {
  const match = `${prefix.replace(/[*?[\]\\^]/g, '\\$&')}*`;
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}

/** A fresh key prefix for one scenario and system, e.g. `{bench-overhead-fleet-1a2b}`. */
export function benchPrefix(scenario: string, system: string): string {
  return `{bench-${scenario}-${system}-${Math.random().toString(16).slice(2, 8)}}`;
}
