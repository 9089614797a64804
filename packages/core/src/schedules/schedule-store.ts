/**
 * Schedules in Redis, and their BullMQ job schedulers on the `schedules` queue.
 *
 * Keys (under the fleet prefix, so under its hash tag):
 * - `<p>:schedules`                           hash: name → {@link ScheduleRecord} (JSON)
 * - `<p>:schedule:<name>:state`               hash: last_run_id, last_started_at, last_fire_at, last_outcome,
 *                                             last_decision (JSON), last_error, start_total, skipped_total, missed_total
 * - `<p>:schedule:<name>:runs`                sorted set: the runs the schedule started, scored by fire time
 * - `<p>:schedule-fire:<schedule id>:<key>`   the decision of one fire (JSON), kept {@link FIRE_DECISION_TTL_MS}
 *
 * The BullMQ job scheduler of a schedule has the schedule's name as its id; its jobs carry
 * {@link ScheduleFireJobData}. Only active schedules have one: pausing removes it, resuming adds it again.
 */
import { Queue, type RepeatOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { FleetError } from '../errors.js';
import { SCHEDULES_QUEUE, type ScheduleFireJobData } from '../queues/schedule-queue.js';
import { storeCommand } from '../store/commands.js';
import { scheduleToInput, type ScheduleDefinition } from './schedule-definition.js';

/**
 * How long the decision of one fire is kept, ms. A fire job is processed again only while BullMQ
 * still holds it: a stalled lock (30 s) or a retry (5 attempts, backoff from 1 s) come within
 * minutes. An hour covers that many times over and keeps an every-second schedule at 3600 keys.
 */
export const FIRE_DECISION_TTL_MS = 3600 * 1000;
/** How long a run decided but not created yet counts as still starting for the overlap policy, ms. */
export const FIRE_START_GRACE_MS = 60_000;
/** How many runs a schedule's run index keeps (the newest). */
export const SCHEDULE_RUNS_KEPT = 1000;

/** A schedule as stored. */
export interface ScheduleRecord {
  /** A UUID given when the schedule is added: fires of an earlier schedule of the same name are dropped. */
  id: string;
  definition: ScheduleDefinition;
  status: 'active' | 'paused';
  /** Epoch ms. */
  created_at: number;
  updated_at: number;
  /** Id of the API key (or `cli`) that added it; its runs are labelled with it as `user_id`. */
  created_by: string;
  /** Provider recorded on its runs (`anthropic` or `offline`). */
  provider: string;
}

/** What a fire decided (see `decide-fire-3.lua`). */
export interface FireDecision {
  action: 'start' | 'skipped' | 'missed';
  /** The run started (action `start`). */
  run_id?: string;
  /** The schedule's run that was still going. */
  previous_run_id?: string;
  /** The run cancelled first (`overlap: cancel_previous`). */
  cancel_run_id?: string;
  /** The fire time the decision stands for, epoch ms. */
  fire_time: number;
  /** Epoch ms. */
  decided_at: number;
  /** Started by `trigger` (run now), not by the clock. */
  manual?: boolean;
  /** A missed fire started under `catch_up: latest`. */
  caught_up?: boolean;
}

/** What the schedule's state hash says about its fires. */
export interface ScheduleState {
  last_run_id: string | null;
  /** Epoch ms of the last fire decided. */
  last_fire_at: number | null;
  last_outcome: FireDecision['action'] | null;
  last_error: string | null;
  counts: { start: number; skipped: number; missed: number };
}

/**
 * A schedule as the HTTP API, the CLI and the console show it: its settings in the input's shape,
 * its status, and how its fires went. Times are ISO 8601.
 */
export interface ScheduleView {
  name: string;
  workflow: string;
  cron: string | null;
  every: string | null;
  tz: string;
  requirements: string;
  variables: Record<string, string>;
  overlap: ScheduleDefinition['overlap'];
  catch_up: ScheduleDefinition['catchUp'];
  misfire_grace: string;
  status: ScheduleRecord['status'];
  created_by: string;
  created_at: string;
  updated_at: string;
  /** From the job scheduler; null while paused. */
  next_fire_at: string | null;
  last_fire_at: string | null;
  last_outcome: ScheduleState['last_outcome'];
  last_run_id: string | null;
  last_error: string | null;
  /** Fires that started a run, were skipped (overlap), or were missed (catch_up none). */
  fires: ScheduleState['counts'];
}

type DecideFireCommand = (...args: string[]) => Promise<[string, number]>;

export class ScheduleStore {
  readonly queue: Queue;
  private readonly decideFireScript: DecideFireCommand;

  /**
   * @param redis - a connection for ordinary commands (also used by the `schedules` queue's producer).
   * @param prefix - the fleet's key prefix (`FLEET_QUEUE_PREFIX`).
   */
  constructor(
    readonly redis: Redis,
    readonly prefix: string,
  ) {
    this.queue = new Queue(SCHEDULES_QUEUE, { connection: redis, prefix });
    this.decideFireScript = storeCommand<DecideFireCommand>(redis, 'decideFire');
  }

  get schedulesKey(): string {
    return `${this.prefix}:schedules`;
  }
  stateKey(name: string): string {
    return `${this.prefix}:schedule:${name}:state`;
  }
  runsKey(name: string): string {
    return `${this.prefix}:schedule:${name}:runs`;
  }
  fireKey(scheduleId: string, fireKey: string): string {
    return `${this.prefix}:schedule-fire:${scheduleId}:${fireKey}`;
  }

  /**
   * Store a new schedule (active) and register its job scheduler.
   * @throws FleetError `CONFLICT` when a schedule of that name exists.
   */
  async create(record: ScheduleRecord): Promise<ScheduleRecord> {
    const added = await this.redis.hsetnx(this.schedulesKey, record.definition.name, JSON.stringify(record));
    if (added === 0) throw new FleetError('CONFLICT', `a schedule named "${record.definition.name}" exists; remove it first (fleet schedules remove ${record.definition.name}) or pick another name`);
    // A schedule removed and added again starts with a clean history.
    await this.redis.del(this.stateKey(record.definition.name), this.runsKey(record.definition.name));
    await this.register(record);
    return record;
  }

  /** @throws FleetError `SCHEDULE_NOT_FOUND`, naming the schedules there are. */
  async get(name: string): Promise<ScheduleRecord> {
    const raw = await this.redis.hget(this.schedulesKey, name);
    if (raw === null) {
      const names = (await this.redis.hkeys(this.schedulesKey)).sort();
      throw new FleetError('SCHEDULE_NOT_FOUND', `no schedule "${name}"; ${names.length > 0 ? `schedules: ${names.join(', ')}` : 'there are none yet (fleet schedules add)'}`);
    }
    return JSON.parse(raw) as ScheduleRecord;
  }

  /** Every schedule, by name. */
  async list(): Promise<ScheduleRecord[]> {
    const all = await this.redis.hvals(this.schedulesKey);
    return all.map((raw) => JSON.parse(raw) as ScheduleRecord).sort((a, b) => a.definition.name.localeCompare(b.definition.name));
  }

  /** Stop firing (the job scheduler is removed); the definition and its history stay. @throws FleetError `SCHEDULE_NOT_FOUND` */
  async pause(name: string, now = Date.now()): Promise<ScheduleRecord> {
    const record = { ...(await this.get(name)), status: 'paused' as const, updated_at: now };
    await this.redis.hset(this.schedulesKey, name, JSON.stringify(record));
    await this.queue.removeJobScheduler(name);
    return record;
  }

  /** Fire again from the next fire time on (fires while paused are not made up). @throws FleetError `SCHEDULE_NOT_FOUND` */
  async resume(name: string, now = Date.now()): Promise<ScheduleRecord> {
    const record = { ...(await this.get(name)), status: 'active' as const, updated_at: now };
    await this.redis.hset(this.schedulesKey, name, JSON.stringify(record));
    await this.register(record);
    return record;
  }

  /** Remove the schedule, its job scheduler and its history (its runs stay). @throws FleetError `SCHEDULE_NOT_FOUND` */
  async remove(name: string): Promise<void> {
    await this.get(name);
    await this.queue.removeJobScheduler(name);
    await this.redis.hdel(this.schedulesKey, name);
    await this.redis.del(this.stateKey(name), this.runsKey(name));
  }

  /**
   * Add or update the BullMQ job scheduler of an active schedule (`upsertJobScheduler`: the next fire
   * is computed from now; a fire already due is replaced).
   */
  async register(record: ScheduleRecord): Promise<void> {
    const data: ScheduleFireJobData = { schedule: record.definition.name, schedule_id: record.id };
    await this.queue.upsertJobScheduler(record.definition.name, repeatOptions(record.definition), {
      name: 'fire',
      data,
      opts: { attempts: 5, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: true, removeOnFail: { age: 7 * 24 * 3600 } },
    });
  }

  /**
   * Make the job schedulers match the stored schedules: an active schedule without its scheduler (or
   * with one of an earlier definition) gets it; schedulers of paused or removed schedules go. An
   * active schedule whose scheduler is right is left alone, so a fire that came due while no manager
   * ran is still there for the catch-up policy.
   *
   * @returns the names of the schedulers added or updated, and of those removed.
   */
  async reconcileSchedulers(): Promise<{ registered: string[]; removed: string[] }> {
    const records = new Map((await this.list()).map((r) => [r.definition.name, r]));
    const schedulers = await this.queue.getJobSchedulers(0, -1);
    const registered: string[] = [];
    const removed: string[] = [];
    const current = new Set<string>();
    for (const s of schedulers) {
      const id = s.id ?? s.key;
      const record = records.get(id);
      const data = s.template?.data as Partial<ScheduleFireJobData> | undefined;
      if (!record || record.status !== 'active') {
        await this.queue.removeJobScheduler(id);
        removed.push(id);
        continue;
      }
      const want = repeatOptions(record.definition);
      if (data?.schedule_id === record.id && (s.pattern ?? undefined) === want.pattern && (s.every ?? undefined) === want.every && (want.pattern === undefined || s.tz === want.tz)) {
        current.add(id);
      }
    }
    for (const record of records.values()) {
      if (record.status === 'active' && !current.has(record.definition.name)) {
        await this.register(record);
        registered.push(record.definition.name);
      }
    }
    return { registered, removed };
  }

  /** The next fire time of an active schedule (epoch ms), from its job scheduler; null when paused. */
  async nextFireAt(name: string): Promise<number | null> {
    const s = await this.queue.getJobScheduler(name);
    return s?.next ?? null;
  }

  /**
   * Decide what one fire does, once (see `decide-fire-3.lua`): a second call for the same fire
   * (`scheduleId`, `fireKey`) returns the first call's decision, whatever it is asked.
   *
   * @param fireKey - identifies the fire: the BullMQ fire time (ms) for a fire of the clock, a UUID for a trigger.
   * @param runId - the run to start when this call is the one that decides to start one.
   * @param fireTime - the fire time the run stands for, epoch ms.
   * @param missed - a missed fire under `catch_up: none`: recorded, nothing started.
   * @returns the decision, and `decidedHere`: true when this call made it (false: an earlier call did).
   */
  async decideFire(
    record: ScheduleRecord,
    input: { fireKey: string; runId: string; fireTime: number; now: number; missed: boolean; extra?: { manual?: boolean; caught_up?: boolean } },
  ): Promise<{ decision: FireDecision; decidedHere: boolean }> {
    const name = record.definition.name;
    const [raw, decidedHere] = await this.decideFireScript(
      this.fireKey(record.id, input.fireKey),
      this.stateKey(name),
      this.runsKey(name),
      input.runId,
      record.definition.overlap,
      this.prefix,
      String(input.now),
      String(FIRE_DECISION_TTL_MS),
      String(input.fireTime),
      input.missed ? 'missed' : 'fire',
      String(FIRE_START_GRACE_MS),
      JSON.stringify(input.extra ?? {}),
      String(SCHEDULE_RUNS_KEPT),
    );
    return { decision: JSON.parse(raw) as FireDecision, decidedHere: decidedHere === 1 };
  }

  /** Note a fire whose run could not be started; the run no longer counts as the schedule's last. */
  async recordStartFailure(name: string, runId: string, message: string): Promise<void> {
    await this.redis.hset(this.stateKey(name), 'last_error', message);
    if ((await this.redis.hget(this.stateKey(name), 'last_run_id')) === runId) await this.redis.hdel(this.stateKey(name), 'last_run_id');
    await this.redis.zrem(this.runsKey(name), runId);
  }

  async state(name: string): Promise<ScheduleState> {
    const h = await this.redis.hgetall(this.stateKey(name));
    return {
      last_run_id: h.last_run_id ?? null,
      last_fire_at: h.last_fire_at ? Number(h.last_fire_at) : null,
      last_outcome: (h.last_outcome as FireDecision['action'] | undefined) ?? null,
      last_error: h.last_error ?? null,
      counts: { start: Number(h.start_total ?? 0), skipped: Number(h.skipped_total ?? 0), missed: Number(h.missed_total ?? 0) },
    };
  }

  /** The view of a schedule: settings, status, next fire, how its fires went. */
  async view(record: ScheduleRecord): Promise<ScheduleView> {
    const name = record.definition.name;
    const [state, next] = await Promise.all([this.state(name), record.status === 'active' ? this.nextFireAt(name) : Promise.resolve(null)]);
    const input = scheduleToInput(record.definition);
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    return {
      name,
      workflow: input.workflow,
      cron: input.cron ?? null,
      every: input.every ?? null,
      tz: input.tz,
      requirements: input.requirements,
      variables: input.variables,
      overlap: input.overlap,
      catch_up: input.catch_up,
      misfire_grace: input.misfire_grace,
      status: record.status,
      created_by: record.created_by,
      created_at: new Date(record.created_at).toISOString(),
      updated_at: new Date(record.updated_at).toISOString(),
      next_fire_at: iso(next),
      last_fire_at: iso(state.last_fire_at),
      last_outcome: state.last_outcome,
      last_run_id: state.last_run_id,
      last_error: state.last_error,
      fires: state.counts,
    };
  }

  /** The runs the schedule started, newest fire first: `[{run_id, fire_time}]` (fire time in epoch ms). */
  async runs(name: string, limit = 20): Promise<Array<{ run_id: string; fire_time: number }>> {
    const flat = await this.redis.zrevrange(this.runsKey(name), 0, limit - 1, 'WITHSCORES');
    const out: Array<{ run_id: string; fire_time: number }> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ run_id: flat[i] as string, fire_time: Number(flat[i + 1]) });
    return out;
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

/** BullMQ repeat options of a schedule: `pattern` + `tz` for a cron, `every` (ms) for an interval. */
export function repeatOptions(d: ScheduleDefinition): Omit<RepeatOptions, 'key'> {
  return d.cron !== null ? { pattern: d.cron, tz: d.tz } : { every: d.everyMs ?? undefined };
}
