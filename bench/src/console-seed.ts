/**
 * Many runs in Redis for the console benchmark (and the runs-list tests): copies of real finished
 * runs, each under a new id with its own creation time, requirements and labels.
 *
 * A copy holds every key a finished run holds for the runs list and the run page: the run record
 * (`meta`, `state`, `result`, `version`), its labels, its shared context and its event stream, and an
 * entry in the run index `<p>:runs` scored by its creation time. Copies get no expiry and are not
 * in the active set (they are finished), so the manager leaves them alone.
 */
import { randomUUID } from 'node:crypto';
import type { RunState } from '@agentfleet/core';
import { decodeRunMeta, decodeRunResult, decodeRunState, encodeRunMeta, encodeRunResult, encodeRunState } from '@agentfleet/core/internal';
import type { Redis } from 'ioredis';

/** What each copy gets, by its number `i` (0 = the newest). */
export interface SeedCopy {
  /** Requirements of the copy. */
  requirements: string;
  /** Labels of the copy (`user_id`, `conversation_id`, ...); the original's labels are kept otherwise. */
  labels?: Record<string, string>;
}

export interface SeedOptions {
  /** Fleet key prefix, e.g. `{fleet}`. */
  prefix: string;
  /** Ids of the finished runs to copy, used in turn. */
  templates: readonly string[];
  /** How many copies. */
  count: number;
  /** Creation time of copy 0, epoch ms; each later copy is `spacingMs` older. */
  newest: number;
  /** ms between two copies' creation times. @defaultValue 1000 */
  spacingMs?: number;
  /** Requirements and labels of copy `i`. */
  copy: (i: number) => SeedCopy;
  /** Copies written per pipeline. @defaultValue 250 */
  batch?: number;
  /** Copy each run's event stream too (the run page's event log and timeline read it). @defaultValue true */
  events?: boolean;
}

interface Original {
  id: string;
  record: Record<string, string>;
  labels: Record<string, string>;
  context: Record<string, string>;
  events: Array<[string, string[]]>;
  createdAt: number;
}

/**
 * Write `count` copies of the `templates` runs.
 *
 * @returns the copies' ids, newest first.
 * @throws Error when a template run is not in Redis or not finished.
 */
export async function seedRunCopies(redis: Redis, options: SeedOptions): Promise<string[]> {
  const { prefix, count, newest } = options;
  const spacing = options.spacingMs ?? 1000;
  const batch = options.batch ?? 250;
  const originals = await Promise.all(options.templates.map((id) => readOriginal(redis, prefix, id)));
  const ids: string[] = [];
  for (let start = 0; start < count; start += batch) {
    const pipe = redis.pipeline();
    for (let i = start; i < Math.min(count, start + batch); i++) {
      const original = originals[i % originals.length] as Original;
      const id = randomUUID();
      ids.push(id);
      const createdAt = newest - i * spacing;
      const shift = createdAt - original.createdAt;
      const { requirements, labels } = options.copy(i);
      const swap = (raw: string) => raw.split(original.id).join(id);
      const run = `${prefix}:run:${id}`;
      const record: Record<string, string> = {};
      for (const [field, raw] of Object.entries(original.record)) record[field] = swap(raw);
      // The run's documents through the store's codec (any layout it reads in, the current one out).
      record.meta = encodeRunMeta({ ...decodeRunMeta(id, record.meta as string), created_at: createdAt, requirements });
      record.state = encodeRunState(shiftTimes(decodeRunState(id, record.state as string), shift) as RunState);
      if (record.result) {
        const result = decodeRunResult(id, record.result);
        result.requirements = requirements;
        result.created_at = new Date(Date.parse(result.created_at) + shift).toISOString();
        if (result.finished_at) result.finished_at = new Date(Date.parse(result.finished_at) + shift).toISOString();
        record.result = encodeRunResult(result);
      }
      pipe.hset(run, record);
      pipe.hset(`${run}:labels`, { ...original.labels, ...labels });
      if (Object.keys(original.context).length > 0) {
        const context: Record<string, string> = {};
        for (const [field, raw] of Object.entries(original.context)) context[field] = swap(raw);
        pipe.hset(`${run}:context`, context);
      }
      if (options.events !== false) for (const [, fields] of original.events) pipe.xadd(`${run}:events`, '*', ...fields.map(swap));
      pipe.zadd(`${prefix}:runs`, createdAt, id);
    }
    const replies = (await pipe.exec()) ?? [];
    for (const [err] of replies) if (err) throw err;
  }
  return ids;
}

async function readOriginal(redis: Redis, prefix: string, id: string): Promise<Original> {
  const run = `${prefix}:run:${id}`;
  const [record, labels, context, events] = await Promise.all([redis.hgetall(run), redis.hgetall(`${run}:labels`), redis.hgetall(`${run}:context`), redis.xrange(`${run}:events`, '-', '+')]);
  if (!record.state || !record.meta) throw new Error(`run ${id} is not in Redis under ${prefix}: cannot copy it`);
  const state = decodeRunState(id, record.state);
  if (!['completed', 'failed', 'cancelled'].includes(state.status)) throw new Error(`run ${id} is ${state.status}: only finished runs are copied`);
  return { id, record, labels, context, events, createdAt: state.createdAt };
}

/** `value` (an in-memory run state) with every epoch-ms time field (`createdAt`, `startedAt`, `queuedAt`, `finishedAt`, `at`) moved by `shift` ms, at any depth. */
function shiftTimes(value: unknown, shift: number): unknown {
  if (Array.isArray(value)) return value.map((v) => shiftTimes(v, shift));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = typeof v === 'number' && /^(createdAt|startedAt|queuedAt|finishedAt|at)$/.test(k) ? v + shift : shiftTimes(v, shift);
  }
  return out;
}
