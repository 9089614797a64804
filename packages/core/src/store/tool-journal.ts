/**
 * The journal of an agent turn's tool loop, so a retried attempt never repeats a side effect: each
 * model reply and each tool call's result is written before the loop goes on; an attempt taken up
 * again after a crash replays what the journal holds (the replies instead of new model calls, the
 * results instead of new tool calls) and continues from the first step it does not hold.
 *
 * Key: `<p>:run:<id>:tool-journal`, a hash that expires with the run's other keys (its suffix is in
 * `RUN_KEY_SUFFIXES`). Fields, per phase iteration `<phase>.<iteration>`:
 * - `<phase>.<iteration>.<n>`: step `n` (0, 1, …) as JSON {@link ToolJournalEntry}
 * - `<phase>.<iteration>.next`: the number of the next step to write
 * - `<phase>.<iteration>.start`: the first step of the open segment, the one an attempt replays.
 *   An attempt that failed cleanly (its failure was committed) closes its segment, so the next
 *   attempt starts afresh: a new conversation, with step numbers (and idempotency keys) that
 *   continue after the old ones and so never collide with them.
 *
 * A phase that paused on its budget (`on_exceed: wait`) in the middle of a loop continues the same
 * journal in the iteration the raise starts (`PhaseState.journal` names the iteration that paused),
 * so the calls it made are replayed, not repeated, and their keys stay the same.
 *
 * Phase names hold no `.` (they match `NAME_PATTERN`), so the fields cannot clash.
 */
import type { Redis } from 'ioredis';
import type { LlmResponse } from '../llm/types.js';

/** One step of a tool loop: a model reply, or the result of one tool call. */
export type ToolJournalEntry =
  | { type: 'reply'; reply: LlmResponse }
  | {
      type: 'tool';
      /** The provider's id of the call this result answers. */
      id: string;
      name: string;
      /** The result as sent to the model (text). */
      content: string;
      isError: boolean;
    };

/** What an attempt finds in the journal of its phase iteration. */
export interface ToolJournalReplay {
  /** Steps of the open segment, in order (replay these). */
  entries: ToolJournalEntry[];
  /** Number of the first step of the open segment. */
  start: number;
}

/**
 * The journal of one phase iteration of one run.
 *
 * @example
 * const journal = new ToolJournal(redis, '{fleet}', runId, 'implementation', 1);
 * const { entries, start } = await journal.load();
 */
export class ToolJournal {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #field: string;

  constructor(redis: Redis, prefix: string, runId: string, phase: string, iteration: number) {
    this.#redis = redis;
    this.#key = `${prefix}:run:${runId}:tool-journal`;
    this.#field = `${phase}.${iteration}`;
  }

  /** The Redis key of the run's journal. */
  get key(): string {
    return this.#key;
  }

  /** Read the open segment: every step from `start` to `next` (both missing: an empty journal). */
  async load(): Promise<ToolJournalReplay> {
    const [startRaw, nextRaw] = await this.#redis.hmget(this.#key, `${this.#field}.start`, `${this.#field}.next`);
    const start = Number(startRaw ?? 0);
    const next = Number(nextRaw ?? 0);
    if (next <= start) return { entries: [], start };
    const fields = Array.from({ length: next - start }, (_, i) => `${this.#field}.${start + i}`);
    const raw = await this.#redis.hmget(this.#key, ...fields);
    const entries: ToolJournalEntry[] = [];
    for (const value of raw) {
      if (value === null) break; // a step lost to a partial write: replay stops before it
      entries.push(JSON.parse(value) as ToolJournalEntry);
    }
    return { entries, start };
  }

  /** The number of the next step to write: every step before it is journaled (0 for an empty journal). */
  async next(): Promise<number> {
    return Number((await this.#redis.hget(this.#key, `${this.#field}.next`)) ?? 0);
  }

  /** Write step `n` and move `next` past it, in one command. */
  async append(n: number, entry: ToolJournalEntry): Promise<void> {
    await this.#redis.hset(this.#key, `${this.#field}.${n}`, JSON.stringify(entry), `${this.#field}.next`, String(n + 1));
  }

  /**
   * Close the open segment (the attempt's failure was committed): the next attempt starts a new
   * conversation after the last step written. One attempt of an iteration runs at a time, so the
   * read and the write need no transaction.
   */
  async close(): Promise<void> {
    const next = (await this.#redis.hget(this.#key, `${this.#field}.next`)) ?? '0';
    await this.#redis.hset(this.#key, `${this.#field}.start`, next);
  }
}
