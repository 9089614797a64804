/**
 * Rate limit for a log line that repeats: while Redis is down or full, every connection and every
 * failed command reports the same error, hundreds of times a second. The first occurrence of a
 * line is written at once; the same line again within `windowMs` is counted instead, and the count
 * is said on the next line written for it after the window (`repeated: n`).
 */

/** What {@link RepeatLimiter} decided for one occurrence. */
export type RepeatVerdict = { emit: true; suppressed: number } | { emit: false };

/** `(key) => verdict`: whether to write this occurrence of the line `key`, and how many were held back before it. */
export type RepeatLimiter = (key: string) => RepeatVerdict;

/**
 * @param windowMs - at most one line per key per this many ms. @defaultValue 10000
 * @param now - the clock, ms (a test clock in tests). @defaultValue `Date.now`
 * @param maxKeys - distinct lines remembered; the oldest is forgotten beyond it. @defaultValue 1000
 * @example
 * const limit = createRepeatLimiter();
 * redis.on('error', (err) => { const v = limit(err.message); if (v.emit) log.error({ err, repeated: v.suppressed }, err.message); });
 */
export function createRepeatLimiter(windowMs = 10_000, now: () => number = Date.now, maxKeys = 1000): RepeatLimiter {
  const seen = new Map<string, { at: number; suppressed: number }>();
  return (key) => {
    const t = now();
    const entry = seen.get(key);
    if (entry && t - entry.at < windowMs) {
      entry.suppressed += 1;
      return { emit: false };
    }
    const suppressed = entry?.suppressed ?? 0;
    seen.delete(key);
    seen.set(key, { at: t, suppressed: 0 });
    if (seen.size > maxKeys) seen.delete(seen.keys().next().value as string);
    return { emit: true, suppressed };
  };
}

/** The key under which repeats of an error count as one line: its name and message (only identical ones merge). */
export function repeatKey(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
