/**
 * The short-lived stream of a run's phase output as the model writes it: `<p>:run:<id>:output`, a
 * Redis Stream apart from the run's durable events (`<p>:run:<id>:events`), capped at
 * {@link PHASE_OUTPUT_MAXLEN} entries and expiring {@link PHASE_OUTPUT_TTL_MS} after its last write,
 * so the run's event history stays small and a finished run's partial output goes away by itself.
 *
 * Entries are display material only: nothing here is ever read into the shared context or the run
 * result. A reply that fails (a dropped stream, a schema repair) leaves its pieces here; the next
 * call of the attempt starts over at offset 0 under a new `call` number, the next attempt under a
 * new `attempt`.
 *
 * Each entry has the fields `data` (the {@link PhaseOutputDelta} as JSON).
 */
import type { Redis } from 'ioredis';

import type { LlmDelta } from '../llm/types.js';

/** Entries kept per run (`XADD … MAXLEN ~`); older pieces are dropped first. */
export const PHASE_OUTPUT_MAXLEN = 5000;
/** The stream expires this long after its last write, ms. */
export const PHASE_OUTPUT_TTL_MS = 10 * 60_000;

/** Which attempt of which phase a piece of output belongs to. */
export interface PhaseOutputRef {
  run_id: string;
  phase: string;
  iteration: number;
  attempt: number;
}

/**
 * One piece of a phase's output, as served on the run's SSE endpoint (`event: phase_output_delta`)
 * and printed by `fleet run --stream`.
 */
export interface PhaseOutputDelta extends PhaseOutputRef {
  type: 'phase_output_delta';
  /** 0 for the attempt's first model call, 1.. for schema repairs. */
  call: number;
  /** `tool_input` (the structured output's partial JSON), `text` or `thinking`. */
  kind: LlmDelta['kind'];
  /** Where `text` starts in the output of this call and kind, in UTF-16 code units: a client that already has more skips the overlap. */
  offset: number;
  text: string;
  /** When the piece was written to Redis, epoch ms. */
  at: number;
}

/** A delta with its stream entry id. */
export interface StoredPhaseOutputDelta {
  id: string;
  delta: PhaseOutputDelta;
}

/** The Redis key of a run's output stream. */
export function phaseOutputKey(prefix: string, runId: string): string {
  return `${prefix}:run:${runId}:output`;
}

/** Options of {@link PhaseOutputWriter}. */
export interface PhaseOutputWriterOptions {
  /** @defaultValue {@link PHASE_OUTPUT_MAXLEN} */
  maxLen?: number | undefined;
  /** @defaultValue {@link PHASE_OUTPUT_TTL_MS} */
  ttlMs?: number | undefined;
  /** Told of a failed write; the pieces of that write are dropped (display only). @defaultValue ignore */
  onError?: ((err: unknown) => void) | undefined;
  /** @defaultValue Date.now */
  now?: (() => number) | undefined;
}

/**
 * Writes one attempt's output pieces to the run's output stream. {@link push} never blocks and
 * never throws: pieces that arrive while a write is in flight are gathered and sent together by the
 * next write (one `XADD` per call and kind), so a fast model costs a handful of Redis round trips,
 * not one per token.
 *
 * @example
 * const out = new PhaseOutputWriter(redis, '{fleet}', { run_id, phase: 'implementation', iteration: 0, attempt: 1 });
 * await runRole(role, llm, input, { ..., onDelta: (d) => out.push(d) });
 * await out.flush();
 */
export class PhaseOutputWriter {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #ref: PhaseOutputRef;
  readonly #maxLen: number;
  readonly #ttlMs: number;
  readonly #onError: (err: unknown) => void;
  readonly #now: () => number;
  /** Characters written so far per `call:kind`. */
  readonly #offsets = new Map<string, number>();
  #pending: Array<{ call: number; kind: LlmDelta['kind']; text: string }> = [];
  #inFlight: Promise<void> | undefined;

  constructor(redis: Redis, prefix: string, ref: PhaseOutputRef, options: PhaseOutputWriterOptions = {}) {
    this.#redis = redis;
    this.#key = phaseOutputKey(prefix, ref.run_id);
    this.#ref = ref;
    this.#maxLen = options.maxLen ?? PHASE_OUTPUT_MAXLEN;
    this.#ttlMs = options.ttlMs ?? PHASE_OUTPUT_TTL_MS;
    this.#onError = options.onError ?? (() => undefined);
    this.#now = options.now ?? Date.now;
  }

  /** Queue a piece of output; written at once when no write is in flight, else with the next one. */
  push(delta: LlmDelta & { call: number }): void {
    if (delta.text === '') return;
    const last = this.#pending.at(-1);
    if (last && last.call === delta.call && last.kind === delta.kind) last.text += delta.text;
    else this.#pending.push({ call: delta.call, kind: delta.kind, text: delta.text });
    this.#inFlight ??= this.#drain();
  }

  /** Resolves once every piece pushed so far was written (or dropped on an error). */
  async flush(): Promise<void> {
    while (this.#inFlight) await this.#inFlight;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending.length > 0) {
        const batch = this.#pending;
        this.#pending = [];
        const pipeline = this.#redis.pipeline();
        const at = this.#now();
        for (const piece of batch) {
          const slot = `${piece.call}:${piece.kind}`;
          const offset = this.#offsets.get(slot) ?? 0;
          this.#offsets.set(slot, offset + piece.text.length);
          const delta: PhaseOutputDelta = { type: 'phase_output_delta', ...this.#ref, call: piece.call, kind: piece.kind, offset, text: piece.text, at };
          pipeline.xadd(this.#key, 'MAXLEN', '~', this.#maxLen, '*', 'data', JSON.stringify(delta));
        }
        pipeline.pexpire(this.#key, this.#ttlMs);
        try {
          const results = (await pipeline.exec()) ?? [];
          const failed = results.find(([err]) => err);
          if (failed) this.#onError(failed[0]);
        } catch (err) {
          this.#onError(err);
        }
      }
    } finally {
      this.#inFlight = undefined;
    }
  }
}

/**
 * Read a run's output pieces after entry `afterId` (exclusive; `0` for every piece still kept).
 *
 * @param blockMs - wait up to this long for a new piece, ms, on `blocking` (a connection kept for
 *   blocking reads); 0 returns at once.
 * @throws TypeError when `blockMs` > 0 without `blocking`.
 */
export async function readPhaseOutput(
  redis: Redis,
  prefix: string,
  runId: string,
  afterId = '0',
  blockMs = 0,
  blocking?: Redis,
): Promise<StoredPhaseOutputDelta[]> {
  const key = phaseOutputKey(prefix, runId);
  if (blockMs > 0 && !blocking) throw new TypeError('readPhaseOutput: pass a dedicated connection for blocking reads');
  const reply =
    blockMs > 0
      ? await (blocking as Redis).xread('COUNT', 1000, 'BLOCK', blockMs, 'STREAMS', key, afterId)
      : await redis.xread('COUNT', 1000, 'STREAMS', key, afterId);
  return reply ? parsePhaseOutputEntries(reply[0]?.[1] ?? []) : [];
}

/** Stream entries (`[id, ['data', json]]`) as deltas; entries without `data` are skipped. */
export function parsePhaseOutputEntries(entries: ReadonlyArray<[string, string[]]>): StoredPhaseOutputDelta[] {
  const out: StoredPhaseOutputDelta[] = [];
  for (const [id, fields] of entries) {
    const i = fields.indexOf('data');
    const data = i >= 0 ? fields[i + 1] : undefined;
    if (data) out.push({ id, delta: JSON.parse(data) as PhaseOutputDelta });
  }
  return out;
}
