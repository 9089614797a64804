import type { Redis } from 'ioredis';

/**
 * A named Lua script as a function on `redis`: defined once per connection (ioredis `defineCommand`,
 * which loads it with EVALSHA and falls back to EVAL), bound, and typed by the caller.
 *
 * @param keys - how many leading arguments are keys (Redis Cluster routes on them).
 */
export function luaCommand<F extends (...args: string[]) => Promise<unknown>>(redis: Redis, name: string, keys: number, lua: string): F {
  const commands = redis as unknown as Record<string, F | undefined>;
  if (!commands[name]) redis.defineCommand(name, { numberOfKeys: keys, lua });
  return (commands[name] as F).bind(redis) as F;
}
