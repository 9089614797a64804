/**
 * What `fleet run` says while Redis is away: one line when it stops answering and one when it
 * answers again, instead of an error (and an `[ioredis] Unhandled error event` stack) from every
 * connection on every reconnection attempt. Other errors are written once per 10 s each, with
 * the count of repeats held back.
 */
import { createRepeatLimiter, redactRedisUrl, repeatKey, type createRedis } from '@agentfleet/core';
type Redis = ReturnType<typeof createRedis>;

/** Errors that mean the connection to Redis is gone (it reconnects by itself). */
const CONNECTION_LOST = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND|Connection is closed|Stream isn't writeable|connect ETIMEDOUT|Socket closed unexpectedly/;

export interface RedisNotice {
  /** For every connection's and pool's `error`: the first lost connection is said, the rest counted. */
  onError: (err: Error) => void;
  /** Listen to `redis`'s errors, and say when it is ready again after an outage. */
  watch: (redis: Redis) => void;
  /** How many lost-connection errors were held back (for tests and the final summary). */
  readonly heldBack: number;
}

/**
 * @param url - the Redis URL, said with its password redacted.
 * @param say - writes one line to stderr.
 */
export function redisNotice(url: string, say: (line: string) => void): RedisNotice {
  const where = redactRedisUrl(url);
  const limit = createRepeatLimiter();
  let down = false;
  let heldBack = 0;
  const onError = (err: Error) => {
    if (CONNECTION_LOST.test(err.message) || CONNECTION_LOST.test((err as { code?: string }).code ?? '')) {
      if (down) {
        heldBack += 1;
        return;
      }
      down = true;
      const code = (err as { code?: string }).code ?? CONNECTION_LOST.exec(err.message)?.[0] ?? err.message;
      say(`fleet: Redis at ${where} does not answer (${code}); waiting for it: the run goes on once it is back (Ctrl-C to stop)`);
      return;
    }
    const verdict = limit(repeatKey(err));
    if (verdict.emit) say(`fleet: ${err.message}${verdict.suppressed > 0 ? ` (${verdict.suppressed} more like it since the last report)` : ''}`);
  };
  return {
    onError,
    watch(redis) {
      redis.on('error', onError);
      redis.on('ready', () => {
        if (!down) return;
        down = false;
        say(`fleet: Redis at ${where} answers again`);
      });
    },
    get heldBack() {
      return heldBack;
    },
  };
}
