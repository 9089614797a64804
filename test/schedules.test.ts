/**
 * Schedules on real Redis with real managers: BullMQ job schedulers fire, each fire starts exactly
 * one run even with two managers, pause and resume, the `skip` overlap policy while a run waits for an
 * approval, and the catch-up policies for fires taken late (a manager clock ahead of real time).
 *
 * Nothing here sleeps: the test waits on the `schedules` queue's event stream (BullMQ QueueEvents,
 * a blocking XREAD) and on run events.
 */
import { metrics } from '@opentelemetry/api';
import { AggregationTemporality, MeterProvider, MetricReader, type SumMetricData } from '@opentelemetry/sdk-metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FleetClient,
  RunLabelStore,
  SCHEDULES_QUEUE,
  ScheduleRunner,
  TemplateRegistry,
  createRedis,
  SCHEDULE_FIRES_METRIC,
  systemClock,
  type Clock,
  type FireOutcome,
  type RunLinks,
} from '@agentfleet/core';
import { startManager, type Manager } from '@agentfleet/manager';
import { QueueEvents } from 'bullmq';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

/** A workflow whose run waits for an approval: it stays active until the test approves it. */
const APPROVAL_WORKFLOW = {
  name: 'nightly-sign-off',
  description: 'waits for a human sign-off',
  agents: ['planner'],
  phases: [{ name: 'sign_off', type: 'approval', description: 'sign off the night', timeout: 3600 }],
};

/** One fire job that completed on the `schedules` queue. */
interface Fire {
  schedule: string;
  /** The fire time BullMQ scheduled it for (from its job id), epoch ms. */
  slot: number;
  outcome: FireOutcome;
}

interface Fleet extends AsyncDisposable {
  prefix: string;
  client: FleetClient;
  runner: ScheduleRunner;
  labels: RunLabelStore;
  managers: Manager[];
  /** Resolve with the next `n` fires of `schedule` that match `filter`, completed from now on. */
  fires(schedule: string, n: number, filter?: (f: Fire) => boolean): Promise<Fire[]>;
  /** Ids of the runs labelled with the schedule's name, among every run in Redis. */
  labelledRuns(schedule: string): Promise<string[]>;
}

/** Reads this process's metrics on demand (cumulative). */
class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}
const reader = new TestReader();
beforeAll(() => {
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
});

/** The value of `fleet.schedule.fires` for one schedule and outcome, in this process. */
async function firesCounted(schedule: string, outcome: string): Promise<number> {
  const { resourceMetrics } = await reader.collect();
  const metric = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === SCHEDULE_FIRES_METRIC) as SumMetricData | undefined;
  return (metric?.dataPoints ?? []).filter((p) => p.attributes['fleet.schedule.name'] === schedule && p.attributes['fleet.schedule.outcome'] === outcome).reduce((sum, p) => sum + p.value, 0);
}

const prefixes: string[] = [];
afterAll(async () => {
  for (const p of prefixes) await cleanupPrefix(redisUrl(), p);
});

async function startFleet(name: string, managers: number, clock?: Clock): Promise<Fleet> {
  const url = redisUrl();
  const prefix = uniquePrefix(name);
  prefixes.push(prefix);
  const redis = createRedis(url);
  await new TemplateRegistry(redis, prefix).create(APPROVAL_WORKFLOW);
  const eventsConnection = createRedis(url, { forWorker: true });
  const events = new QueueEvents(SCHEDULES_QUEUE, { connection: eventsConnection, prefix, autorun: false });
  const waiters: Array<(f: Fire) => void> = [];
  events.on('completed', ({ jobId, returnvalue }) => {
    const m = /^repeat:(.+):(\d+)$/.exec(jobId);
    if (!m) return;
    const fire: Fire = { schedule: m[1] ?? '', slot: Number(m[2]), outcome: (typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue) as FireOutcome };
    for (const w of [...waiters]) w(fire);
  });
  void events.run();
  await events.waitUntilReady();
  const started: Manager[] = [];
  for (let i = 0; i < managers; i++) started.push(await startManager({ redisUrl: url, prefix, warn: () => undefined, ...(clock ? { clock } : {}) }));
  const client = new FleetClient(redis, prefix);
  const runner = new ScheduleRunner(redis, prefix, client);
  const labels = new RunLabelStore(redis, prefix);
  const close = async () => {
    for (const m of started) await m.close();
    await events.close();
    eventsConnection.disconnect();
    await runner.close();
    await client.close();
    redis.disconnect();
  };
  return {
    prefix,
    client,
    runner,
    labels,
    managers: started,
    fires(schedule, n, filter = () => true) {
      return new Promise((resolve) => {
        const got: Fire[] = [];
        const w = (f: Fire) => {
          if (f.schedule !== schedule || !filter(f)) return;
          got.push(f);
          if (got.length === n) {
            waiters.splice(waiters.indexOf(w), 1);
            resolve(got);
          }
        };
        waiters.push(w);
      });
    },
    async labelledRuns(schedule) {
      const ids = await client.store.recentRunIds(10_000);
      const l = await labels.getMany(ids);
      return ids.filter((_, i) => l[i]?.schedule === schedule);
    },
    [Symbol.asyncDispose]: close,
  };
}

const started = (f: Fire) => f.outcome.action === 'start';
const runIdOf = (o: FireOutcome | undefined): string => (o?.action === 'start' ? (o.run_id ?? '') : '');

describe('schedules', () => {
  it('an every-second schedule fires once per fire time with two managers (no double starts over 10 fires), pauses and resumes', { timeout: 120_000 }, async () => {
    await using fleet = await startFleet('sched-two-managers', 2);
    const tenFires = fleet.fires('every-second', 10);
    await fleet.runner.add(
      { name: 'every-second', workflow: 'nightly-sign-off', every: '1s', requirements: 'sign off each second', overlap: 'allow' },
      { createdBy: 'test', provider: 'offline' },
    );
    const fired = await tenFires;
    expect(fired.map((f) => f.outcome.action)).toEqual(Array(10).fill('start'));
    // Ten fires, ten fire times one interval apart: BullMQ made one job per fire time.
    const slots = fired.map((f) => f.slot).sort((a, b) => a - b);
    for (let i = 1; i < slots.length; i++) expect(((slots[i] ?? 0) - (slots[i - 1] ?? 0)) % 1000).toBe(0);
    expect(new Set(slots).size).toBe(10);

    await fleet.runner.store.pause('every-second');
    expect(await fleet.runner.store.nextFireAt('every-second')).toBeNull();
    // No next fire is programmed any more (a fire already due when the pause came is dropped when taken).
    expect(await fleet.runner.store.queue.getJobCounts('delayed')).toEqual({ delayed: 0 });

    const resumedAt = Date.now();
    const afterResume = fleet.fires('every-second', 2, (f) => f.slot >= resumedAt);
    await fleet.runner.store.resume('every-second');
    const resumed = await afterResume;
    expect(resumed.map((f) => f.outcome.action)).toEqual(['start', 'start']);

    // Every fire started exactly one run: as many runs labelled with the schedule as fires that
    // started one, each recording its schedule and its own fire time.
    const labelled = await fleet.labelledRuns('every-second');
    const state = await fleet.runner.store.state('every-second');
    expect(labelled).toHaveLength(state.counts.start);
    // Both managers run in this process: the fires they decided were counted once each.
    expect(await firesCounted('every-second', 'start')).toBe(state.counts.start);
    for (const f of [...fired, ...resumed]) expect(labelled).toContain(runIdOf(f.outcome));
    const fireTimes = new Set<string>();
    for (const id of labelled) {
      const links = (await fleet.client.result(id)).links as RunLinks;
      expect(links.schedule?.name).toBe('every-second');
      fireTimes.add(links.schedule?.fire_time ?? '');
    }
    expect(fireTimes.size).toBe(labelled.length);
    for (const f of fired) expect(fireTimes).toContain(new Date(f.slot).toISOString());
    const index = await fleet.runner.store.runs('every-second', 1000);
    expect(new Set(index.map((r) => r.run_id))).toEqual(new Set(labelled));
  });

  it('a fire processed twice at once starts one run', async () => {
    await using fleet = await startFleet('sched-twice', 0);
    await fleet.runner.add({ name: 'hourly', workflow: 'nightly-sign-off', cron: '0 * * * *', requirements: 'hourly sign-off' }, { createdBy: 'test', provider: 'offline' });
    const record = await fleet.runner.store.get('hourly');
    const slot = Math.floor(Date.now() / 3_600_000) * 3_600_000;
    const now = slot + 1000;
    const [a, b] = await Promise.all([
      fleet.runner.fire({ schedule: 'hourly', scheduleId: record.id, fireTime: slot, now }),
      fleet.runner.fire({ schedule: 'hourly', scheduleId: record.id, fireTime: slot, now }),
    ]);
    expect(a).toEqual(b);
    expect(a.action).toBe('start');
    expect(await fleet.labelledRuns('hourly')).toEqual([runIdOf(a)]);
    // Counted once, by the call that decided the fire.
    expect(await firesCounted('hourly', 'start')).toBe(1);
  });

  it('a manager start leaves a right job scheduler alone (a fire due is kept for catch-up), adds a missing one and removes a stale one', async () => {
    await using fleet = await startFleet('sched-reconcile', 0);
    await fleet.runner.add({ name: 'nightly', workflow: 'nightly-sign-off', cron: '0 2 * * *', tz: 'Europe/Berlin', requirements: 'nightly' }, { createdBy: 'test', provider: 'offline' });
    await fleet.runner.add({ name: 'often', workflow: 'nightly-sign-off', every: '1h', requirements: 'often' }, { createdBy: 'test', provider: 'offline' });
    const next = await fleet.runner.store.nextFireAt('nightly');
    expect(await fleet.runner.store.reconcileSchedulers()).toEqual({ registered: [], removed: [] });
    expect(await fleet.runner.store.nextFireAt('nightly')).toBe(next);

    await fleet.runner.store.queue.removeJobScheduler('nightly');
    await fleet.runner.store.pause('often');
    // A scheduler left behind for a paused schedule (a pause whose removal did not get through).
    await fleet.runner.store.register(await fleet.runner.store.get('often'));
    expect(await fleet.runner.store.reconcileSchedulers()).toEqual({ registered: ['nightly'], removed: ['often'] });
    expect(await fleet.runner.store.nextFireAt('nightly')).toBe(next);
    expect(await fleet.runner.store.queue.getJobScheduler('often')).toBeUndefined();
  });

  it('overlap skip: fires while the previous run waits for its approval start nothing; the next fire after it finished starts a run', { timeout: 120_000 }, async () => {
    await using fleet = await startFleet('sched-skip', 1);
    const blocking = createRedis(redisUrl(), { forWorker: true });
    try {
      const threeFires = fleet.fires('slow', 3);
      await fleet.runner.add({ name: 'slow', workflow: 'nightly-sign-off', every: '1s', requirements: 'a slow run', overlap: 'skip' }, { createdBy: 'test', provider: 'offline' });
      const [first, ...skipped] = await threeFires;
      expect(first?.outcome.action).toBe('start');
      const slowRun = runIdOf(first?.outcome);
      for (const f of skipped) expect(f.outcome).toMatchObject({ action: 'skipped', previous_run_id: slowRun });
      expect((await fleet.client.result(slowRun)).status).toBe('waiting');

      // Approve the slow run; once it completed, a fire starts the next run.
      const nextStart = fleet.fires('slow', 1, started);
      await fleet.client.sendEvent(slowRun, 'approval', { approved: true });
      expect((await fleet.client.follow(slowRun, blocking, () => undefined)).status).toBe('completed');
      const [next] = await nextStart;
      expect(next?.outcome.action === 'start' && next.outcome.previous_run_id).toBeUndefined();
      expect(new Set(await fleet.labelledRuns('slow'))).toEqual(new Set([slowRun, runIdOf(next?.outcome)]));
      const state = await fleet.runner.store.state('slow');
      expect(state.counts.start).toBe(2);
      expect(state.counts.skipped).toBeGreaterThanOrEqual(2);
    } finally {
      blocking.disconnect();
    }
  });

  it('overlap cancel_previous: a fire while the previous run waits cancels it and starts the next; allow starts one more', { timeout: 60_000 }, async () => {
    await using fleet = await startFleet('sched-cancel-previous', 1);
    const blocking = createRedis(redisUrl(), { forWorker: true });
    try {
      await fleet.runner.add({ name: 'replace', workflow: 'nightly-sign-off', cron: '0 2 * * *', requirements: 'replace me', overlap: 'cancel_previous' }, { createdBy: 'test', provider: 'offline' });
      const first = await fleet.runner.fire({ schedule: 'replace' });
      const firstRun = runIdOf(first);
      expect((await fleet.client.result(firstRun)).status).toBe('waiting');
      const second = await fleet.runner.fire({ schedule: 'replace' });
      expect(second).toMatchObject({ action: 'start', previous_run_id: firstRun, cancel_run_id: firstRun, manual: true });
      expect((await fleet.client.follow(firstRun, blocking, () => undefined)).status).toBe('cancelled');
      expect((await fleet.client.result(runIdOf(second))).status).toBe('waiting');

      await fleet.runner.add({ name: 'pile-up', workflow: 'nightly-sign-off', cron: '0 2 * * *', requirements: 'pile up', overlap: 'allow' }, { createdBy: 'test', provider: 'offline' });
      const a = await fleet.runner.fire({ schedule: 'pile-up' });
      const b = await fleet.runner.fire({ schedule: 'pile-up' });
      expect(b).toMatchObject({ action: 'start', previous_run_id: runIdOf(a) });
      expect(b.action === 'start' && b.cancel_run_id).toBeUndefined();
      expect((await fleet.client.result(runIdOf(a))).status).toBe('waiting');
    } finally {
      blocking.disconnect();
    }
  });

  it('catch-up: a fire taken past misfire_grace is dropped under none, and starts one run for the latest fire time under latest', { timeout: 60_000 }, async () => {
    // The manager's clock runs 10 minutes ahead: every fire is taken 10 minutes after its time.
    const aheadMs = 10 * 60_000;
    await using fleet = await startFleet('sched-catch-up', 1, { now: () => Date.now() + aheadMs, setTimer: systemClock.setTimer });
    const twoMissed = fleet.fires('dropped', 2);
    await fleet.runner.add({ name: 'dropped', workflow: 'nightly-sign-off', cron: '* * * * * *', requirements: 'missed', catch_up: 'none' }, { createdBy: 'test', provider: 'offline' });
    expect((await twoMissed).map((f) => f.outcome.action)).toEqual(['missed', 'missed']);
    expect(await fleet.labelledRuns('dropped')).toEqual([]);
    expect((await fleet.runner.store.state('dropped')).counts.missed).toBeGreaterThanOrEqual(2);
    await fleet.runner.store.pause('dropped');

    const caughtUp = fleet.fires('caught-up', 1);
    const before = Date.now();
    await fleet.runner.add({ name: 'caught-up', workflow: 'nightly-sign-off', cron: '* * * * * *', requirements: 'caught up', catch_up: 'latest', overlap: 'allow' }, { createdBy: 'test', provider: 'offline' });
    const [f] = await caughtUp;
    expect(f?.outcome).toMatchObject({ action: 'start', caught_up: true });
    // The run stands for the latest second that passed on the manager's clock, not for the slot
    // BullMQ scheduled 10 minutes earlier.
    const fireTime = f?.outcome.action === 'start' ? f.outcome.fire_time : 0;
    expect(fireTime % 1000).toBe(0);
    expect(fireTime).toBeGreaterThan(before + aheadMs - 1000);
    expect(fireTime).toBeGreaterThan(f?.slot ?? 0);
    const [runId] = await fleet.labelledRuns('caught-up');
    expect(((await fleet.client.result(runId ?? '')).links as RunLinks).schedule).toEqual({ name: 'caught-up', fire_time: new Date(fireTime).toISOString(), caught_up: true });
  });
});
