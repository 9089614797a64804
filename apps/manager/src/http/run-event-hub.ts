/**
 * One blocking reader of run event streams for every SSE client of an API process: a single Redis
 * connection runs `XREAD BLOCK` over the streams of every run someone follows and fans each event
 * out to that run's subscribers, so a thousand open streams cost one Redis connection, not a
 * thousand (each SSE client used to hold its own, and enough of them filled Redis's `maxclients`).
 *
 * Each subscriber keeps its own position (the last stream id it was given); the reader asks each
 * run's stream from the oldest position among its subscribers and gives every subscriber only the
 * events after its own. A new subscription wakes the reader at once through a small wake stream of
 * its own (`<prefix>:sse-wake:<uuid>`, read with an explicit id, so a wake sent before the read
 * blocks is still seen), and the reader then includes the new run.
 *
 * Any stream of the fleet can be followed the same way ({@link RunEventHub.subscribeStream}): ./sse.ts
 * follows a run's events and, when asked, its short-lived output stream (phase output deltas).
 *
 * @see https://redis.io/docs/latest/commands/xread/
 */
import { randomUUID } from 'node:crypto';
import type { StoredRunEvent } from '@agentfleet/core';
import type { RunStore } from '@agentfleet/core/internal';
import type { Redis } from 'ioredis';

/** Events per stream per read. */
const READ_COUNT = 500;
/** Backoff after a failed read while Redis is away, ms (doubling up to the maximum). */
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5000;
/** The wake stream keeps this many entries and expires this long after its last wake, ms (a crashed API leaves nothing for long). */
const WAKE_MAXLEN = 16;
const WAKE_TTL_MS = 3_600_000;

/** What a subscriber is told. */
export interface RunEventSink {
  /** Events after the subscriber's position, in stream order (never one it was given before). */
  onEvents(events: readonly StoredRunEvent[]): void;
  /** The reader failed (Redis went away): the subscription has ended. */
  onError(err: Error): void;
}

/** An open subscription; `close()` ends it (idempotent). */
export interface RunEventSubscription {
  close(): void;
}

/** What a subscriber of any stream is told: raw entries (`[id, fields]`), in stream order. */
export interface StreamSink {
  onEntries(entries: ReadonlyArray<[string, string[]]>): void;
  onError(err: Error): void;
}

interface Subscriber {
  /** The stream key followed. */
  key: string;
  /** Last stream id given to this subscriber. */
  last: string;
  sink: StreamSink;
}

/** Whether stream id `a` comes after `b` (`<ms>-<seq>`, each part unsigned 64-bit). */
export function streamIdAfter(a: string, b: string): boolean {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const ms = BigInt(am) - BigInt(bm);
  return ms > 0n || (ms === 0n && BigInt(as) > BigInt(bs));
}

export interface RunEventHubOptions {
  /** Run keys (`eventsKey`) and the fleet prefix come from the store. */
  store: RunStore;
  /** Ordinary connection (non-blocking): sends the wakes. */
  redis: Redis;
  /** Opens the one connection reserved for the blocking reads (offline queue on, no per-command retry limit). */
  connect: () => Redis;
  /** Longest single blocking read, ms; the reader then starts another. @defaultValue 15000 */
  blockMs?: number;
}

/**
 * The shared reader. Start reading happens on the first subscription; the connection stays open
 * until {@link RunEventHub.close}.
 */
export class RunEventHub {
  /** Subscribers by stream key. */
  private readonly runs = new Map<string, Set<Subscriber>>();
  private readonly wakeKey: string;
  private wakeLast = '0';
  private blocking: Redis | undefined;
  private loop: Promise<void> | undefined;
  private closed = false;
  private readonly blockMs: number;

  constructor(private readonly options: RunEventHubOptions) {
    this.wakeKey = `${options.store.prefix}:sse-wake:${randomUUID()}`;
    this.blockMs = options.blockMs ?? 15_000;
  }

  /** Streams followed right now (`runs`), and subscribers in all (for tests and metrics). */
  get size(): { runs: number; subscribers: number } {
    let subscribers = 0;
    for (const subs of this.runs.values()) subscribers += subs.size;
    return { runs: this.runs.size, subscribers };
  }

  /**
   * Follow `runId` from after `afterId` (exclusive). The caller reads what is already there first
   * (see ./sse.ts); the hub then delivers everything after `afterId` as it is appended.
   */
  subscribe(runId: string, afterId: string, sink: RunEventSink): RunEventSubscription {
    return this.subscribeStream(this.options.store.eventsKey(runId), afterId, {
      onEntries: (entries) => {
        let events: StoredRunEvent[];
        try {
          events = this.options.store.eventsOf(runId, entries);
        } catch (err) {
          // A malformed stored event ends this subscription only, not the hub's read of every stream.
          sink.onError(err as Error);
          return;
        }
        sink.onEvents(events);
      },
      onError: (err) => sink.onError(err),
    });
  }

  /**
   * Follow the stream at `key` (a key of the fleet's prefix, e.g. a run's output stream) from after
   * `afterId` (exclusive), as {@link subscribe} does for run events.
   */
  subscribeStream(key: string, afterId: string, sink: StreamSink): RunEventSubscription {
    if (this.closed) throw new Error('RunEventHub is closed');
    const sub: Subscriber = { key, last: afterId, sink };
    let subs = this.runs.get(key);
    if (!subs) {
      subs = new Set();
      this.runs.set(key, subs);
    }
    subs.add(sub);
    this.loop ??= this.read().finally(() => {
      this.loop = undefined;
    });
    this.wake();
    let open = true;
    return {
      close: () => {
        if (!open) return;
        open = false;
        this.remove(sub);
      },
    };
  }

  /** Stop reading and close the connection; subscribers are not told (their HTTP responses end with the server). */
  async close(): Promise<void> {
    this.closed = true;
    this.runs.clear();
    this.wake();
    this.blocking?.disconnect();
    await this.loop?.catch(() => undefined);
    await this.options.redis.del(this.wakeKey).catch(() => undefined);
  }

  private remove(sub: Subscriber): void {
    const subs = this.runs.get(sub.key);
    subs?.delete(sub);
    if (subs && subs.size === 0) this.runs.delete(sub.key);
  }

  /** Make a blocked read return, so the next one includes a new run (a failed wake only delays it up to blockMs). */
  private wake(): void {
    const redis = this.options.redis;
    redis
      .multi()
      .xadd(this.wakeKey, 'MAXLEN', '~', String(WAKE_MAXLEN), '*', 'w', '1')
      .pexpire(this.wakeKey, WAKE_TTL_MS)
      .exec()
      .catch(() => undefined);
  }

  private connection(): Redis {
    if (!this.blocking) {
      this.blocking = this.options.connect();
      this.blocking.on('error', () => {
        // Reported through the failing read.
      });
    }
    return this.blocking;
  }

  private async read(): Promise<void> {
    let backoff = RETRY_MIN_MS;
    while (!this.closed && this.runs.size > 0) {
      const keys = [...this.runs.keys()];
      const positions = keys.map((key) => {
        let oldest: string | undefined;
        for (const s of this.runs.get(key) ?? []) if (oldest === undefined || streamIdAfter(oldest, s.last)) oldest = s.last;
        return oldest ?? '0';
      });
      let reply;
      try {
        reply = await this.connection().xread('COUNT', READ_COUNT, 'BLOCK', this.blockMs, 'STREAMS', this.wakeKey, ...keys, this.wakeLast, ...positions);
        backoff = RETRY_MIN_MS;
      } catch (err) {
        if (this.closed) return;
        // Every subscriber's stream ends (the client resumes with Last-Event-ID); the reader goes on for new ones.
        for (const subs of [...this.runs.values()]) for (const s of [...subs]) {
          this.remove(s);
          s.sink.onError(err as Error);
        }
        await new Promise((resolve) => setTimeout(resolve, backoff).unref());
        backoff = Math.min(backoff * 2, RETRY_MAX_MS);
        continue;
      }
      if (!reply) continue;
      for (const [key, entries] of reply) {
        if (key === this.wakeKey) {
          this.wakeLast = entries.at(-1)?.[0] ?? this.wakeLast;
          continue;
        }
        const subs = this.runs.get(key);
        if (!subs) continue;
        for (const s of [...subs]) {
          const fresh = entries.filter(([id]) => streamIdAfter(id, s.last));
          if (fresh.length === 0) continue;
          s.last = fresh.at(-1)?.[0] ?? s.last;
          s.sink.onEntries(fresh);
        }
      }
    }
  }
}
