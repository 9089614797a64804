import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupPrefix, redisUrl, uniquePrefix } from '../../../../test/support/redis.js';
import { optsEncodeMap, Queue } from 'bullmq';
import { phaseJobAddArguments, phaseJobRequest } from '../engine/phase-job.js';
import { agentQueueName, PhaseJobDataSchema, phaseJobId } from '../queues/contracts.js';
import { compileWorkflow } from '../workflow/compile.js';
import { commandError, commandSource, STORE_COMMANDS, storeCommand, type StoreCommandName } from './commands.js';

const COMMANDS_DIR = fileURLToPath(new URL('./commands/', import.meta.url));
const prefix = uniquePrefix('store-commands');
let redis: Redis;
beforeAll(() => {
  redis = new Redis(redisUrl());
});
afterAll(async () => {
  redis.disconnect();
  await cleanupPrefix(redisUrl(), prefix);
});

type Call = (...args: string[]) => Promise<unknown>;

/** The seven KEYS of `apply-decision-7` for a run of this file's prefix. */
const runKeysOf = (runId: string): string[] => ['run', 'context', 'events', 'runs:active', 'deadlines', 'outbox-of-run', 'outbox'].map((k) => `${prefix}:${runId}:${k}`);
/** A run's meta, as the driver has it, for building its phase jobs. */
const metaOf = (runId: string, workflow: ReturnType<typeof compileWorkflow>) => ({ run_id: runId, workflow, requirements: 'r', variables: {}, created_at: 1, provider: 'offline', trace: {} });

describe('store command files', () => {
  it('lists every .lua file once, with its key count in the name and a KEYS line per key in the header', () => {
    const files = readdirSync(COMMANDS_DIR).filter((f) => f.endsWith('.lua')).map((f) => f.slice(0, -'.lua'.length)).sort();
    const listed = Object.values(STORE_COMMANDS).map((c) => c.file as string).sort();
    expect(listed).toEqual(files);
    for (const [name, { file, keys }] of Object.entries(STORE_COMMANDS)) {
      expect(file.endsWith(`-${keys}`), `${file}.lua: the name ends in its key count`).toBe(true);
      const header = /^--\[\[([\s\S]*?)\]\]/.exec(readFileSync(`${COMMANDS_DIR}${file}.lua`, 'utf8'))?.[1] ?? '';
      const documented = [...header.matchAll(/^\s*KEYS\[(\d+)\]/gm)].map((m) => Number(m[1]));
      expect(documented, `${file}.lua header: KEYS[1..${keys}]`).toEqual(Array.from({ length: keys }, (_, i) => i + 1));
      expect(header, `${file}.lua header documents its ARGV`).toMatch(/ARGV\[1\]/);
      // Includes are resolved: the text sent to Redis has no include line left.
      expect(commandSource(name as StoreCommandName)).not.toMatch(/-- @include/);
    }
  });

  it('every script loads into Redis (SCRIPT LOAD compiles it)', async () => {
    for (const name of Object.keys(STORE_COMMANDS) as StoreCommandName[]) {
      const sha = (await redis.script('LOAD', commandSource(name))) as string;
      expect(sha, name).toMatch(/^[0-9a-f]{40}$/);
    }
  });
});

describe('apply-decision-7', () => {
  const id = 'fence';
  const keys = ['run', 'context', 'events', 'runs:active', 'deadlines', 'outbox-of-run', 'outbox'].map((k) => `${prefix}:${k}`);
  const fair = `${prefix}:fair:agent-planner:`;
  const argv = (expected: number, next: number, outbox: string) =>
    [String(expected), String(next), `{"v":${next}}`, '', id, '0', outbox, '1000', '1', '[["phase_completed","{}"]]', '[[5000,"fence|plan|1"]]', '[]', `[["${fair}","fence.plan.${next}"]]`, '[]', '0', 'plan', '"ok"'];

  it('commits only on the version it was decided on: the state, context, event, deadline and outbox entry together, or nothing', async () => {
    const apply = storeCommand<Call>(redis, 'applyDecision');
    expect(await apply(...keys, ...argv(0, 1, '[]'))).toBe(-1);
    await redis.hset(keys[0] as string, 'version', '0', 'state', '{"v":0}');
    await redis.zadd(fair, 1, 'fence.plan.1', 2, 'fence.plan.2');

    expect(await apply(...keys, ...argv(0, 1, '[{"type":"enqueue"}]'))).toBe(1);
    expect(await redis.hgetall(keys[0] as string)).toEqual({ version: '1', state: '{"v":1}' });
    expect(await redis.hget(keys[1] as string, 'plan')).toBe('"ok"');
    expect(await redis.xlen(keys[2] as string)).toBe(1);
    expect(await redis.zscore(keys[4] as string, 'fence|plan|1')).toBe('5000');
    expect(await redis.hget(keys[5] as string, '1')).toBe('[{"type":"enqueue"}]');
    expect(await redis.zscore(keys[6] as string, id)).toBe('1000');
    // The job the decision ended leaves its fairness group's count.
    expect(await redis.zrange(fair, '0', '-1')).toEqual(['fence.plan.2']);

    // A second decision made on version 0 is fenced out and writes nothing.
    expect(await apply(...keys, ...argv(0, 2, '[{"type":"cancel"}]'))).toBe(0);
    expect(await redis.hget(keys[0] as string, 'version')).toBe('1');
    expect(await redis.xlen(keys[2] as string)).toBe(1);
    expect(await redis.hkeys(keys[5] as string)).toEqual(['1']);
    expect(await redis.zrange(fair, '0', '-1')).toEqual(['fence.plan.2']);
  });

  it("adds the decision's phase jobs with BullMQ's own script, at the fair priority, in the same step as the state; fenced out, it adds none", async () => {
    const runId = 'with-jobs';
    const runKeys = runKeysOf(runId);
    const queue = new Queue(agentQueueName('coder'), { connection: redis, prefix });
    const group = `${prefix}:fair:${queue.name}:`;
    const apply = storeCommand<(...args: string[]) => Promise<number>>(redis, 'applyDecision');
    const workflow = compileWorkflow({ name: 'w', agents: ['coder'], phases: [{ name: 'code', agent: 'coder', retries: 2 }] });
    const meta = metaOf(runId, workflow);
    const jobArgs = (iteration: number, bandStart: number) => {
      const { name, data, opts } = phaseJobRequest(meta, workflow.phases[0]!, iteration, 'coder', { traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01` });
      return [group, queue.toKey(''), opts.jobId, String(bandStart), '1000', ...phaseJobAddArguments(queue, name, data, opts, 1_700_000_000_000)];
    };
    try {
      await redis.hset(runKeys[0] as string, 'version', '0', 'state', '{"v":0}');
      // Another job of the same fairness group is queued: the new one goes behind it.
      await redis.zadd(group, 200, 'other.code.1');
      await redis.hset(queue.toKey('other.code.1'), 'name', 'code');
      // With a context write after the jobs: the script finds it past the jobs' arguments.
      const committed = (expected: number, next: number, ...jobs: string[][]) =>
        apply(...runKeys, String(expected), String(next), `{"v":${next}}`, '', runId, '0', '', '1000', '1', '[]', '[]', '[]', '[]', '[]', String(jobs.length), ...jobs.flat(), 'plan', `{"v":${next}}`);

      expect(await committed(0, 1, jobArgs(1, 200))).toBe(1);
      const job = await queue.getJob(phaseJobId(runId, 'code', 1));
      // As queue.add stores it: data, attempts, backoff, and the fair priority (band start + 1 queued).
      expect(job?.data).toMatchObject({ run_id: runId, phase: 'code', iteration: 1, role: 'coder', max_attempts: 3 });
      expect(job?.opts).toMatchObject({ attempts: 3, priority: 201, removeOnComplete: true });
      expect(await job?.getState()).toBe('prioritized');
      expect(await redis.zscore(group, phaseJobId(runId, 'code', 1))).toBe('201');
      expect(await redis.hget(runKeys[0] as string, 'version')).toBe('1');
      expect(await redis.hget(runKeys[1] as string, 'plan')).toBe('{"v":1}');

      // Fenced out (version 0 again): neither the state nor the job is written.
      expect(await committed(0, 2, jobArgs(2, 200))).toBe(0);
      expect(await queue.getJob(phaseJobId(runId, 'code', 2))).toBeUndefined();
      expect(await redis.hget(runKeys[1] as string, 'plan')).toBe('{"v":1}');
      expect(await redis.zscore(group, phaseJobId(runId, 'code', 2))).toBeNull();
      expect(await queue.getJobCounts('prioritized')).toEqual({ prioritized: 1 });
    } finally {
      await queue.close();
    }
  });

  it('stores a phase job exactly as queue.add stores the same job: every field of its hash, its place in the queue and its events', async () => {
    const runId = 'as-queue-add';
    const runKeys = runKeysOf(runId);
    const viaCommit = new Queue(agentQueueName('designer'), { connection: redis, prefix: `${prefix}:commit` });
    const viaAdd = new Queue(agentQueueName('designer'), { connection: redis, prefix: `${prefix}:add` });
    const apply = storeCommand<(...args: string[]) => Promise<number>>(redis, 'applyDecision');
    const workflow = compileWorkflow({ name: 'w', agents: ['designer'], phases: [{ name: 'design', agent: 'designer', retries: 1, retry_delay: 0.25, model: 'm-1' }] });
    const meta = metaOf(runId, workflow);
    const { name, data, opts } = phaseJobRequest(meta, workflow.phases[0]!, 1, 'designer', { traceparent: `00-${'c'.repeat(32)}-${'d'.repeat(16)}-01` });
    // The data is the contract the agent pools parse, as built (it is not parsed on the way out).
    expect(PhaseJobDataSchema.parse(data)).toEqual(data);
    // The options' JSON is what BullMQ packs only while none of their names is one it shortens.
    expect(Object.keys(opts).filter((k) => k in optsEncodeMap)).toEqual([]);
    const timestamp = 1_700_000_000_123;
    const priority = 300;
    try {
      await redis.hset(runKeys[0] as string, 'version', '0', 'state', '{"v":0}');
      const group = `${prefix}:fair:as-queue-add`;
      expect(await apply(...runKeys, '0', '1', '{"v":1}', '', runId, '0', '', '1000', '0', '[]', '[]', '[]', '[]', '[]', '1', group, viaCommit.toKey(''), opts.jobId, String(priority), '1000', ...phaseJobAddArguments(viaCommit, name, data, opts, timestamp))).toBe(1);
      await viaAdd.add(name, data, { ...opts, priority });

      // Every field but the timestamp, which queue.add takes from the clock.
      const stored = async (q: Queue) => {
        const { timestamp: at, ...hash } = await redis.hgetall(q.toKey(opts.jobId));
        return { at, hash: { ...hash, opts: JSON.parse(hash.opts ?? 'null') as unknown, data: JSON.parse(hash.data ?? 'null') as unknown } };
      };
      const added = await stored(viaAdd);
      const committed = await stored(viaCommit);
      expect(added.hash).toMatchObject({ name: 'design', priority: String(priority) });
      expect(committed.hash).toEqual(added.hash);
      expect(committed.at).toBe(String(timestamp));
      expect(await redis.zrange(viaCommit.toKey('prioritized'), 0, -1, 'WITHSCORES')).toEqual(await redis.zrange(viaAdd.toKey('prioritized'), 0, -1, 'WITHSCORES'));
      const events = async (q: Queue) => (await redis.xrange(q.toKey('events'), '-', '+')).map(([, fields]) => fields);
      expect(await events(viaCommit)).toEqual(await events(viaAdd));
      // And BullMQ reads it back as the job it was asked for.
      const job = await viaCommit.getJob(opts.jobId);
      expect(job?.data).toEqual(data);
      expect(job?.opts).toMatchObject({ ...opts, priority });
      expect(await job?.getState()).toBe('prioritized');
    } finally {
      await viaCommit.close();
      await viaAdd.close();
    }
  });

  it('refuses a phase job whose data is over its size limit or whose id BullMQ refuses, before anything is sent', async () => {
    const queue = new Queue(agentQueueName('coder'), { connection: redis, prefix });
    const workflow = compileWorkflow({ name: 'w', agents: ['coder'], phases: [{ name: 'code', agent: 'coder' }] });
    const meta = metaOf('too-big', workflow);
    const { name, data, opts } = phaseJobRequest(meta, workflow.phases[0]!, 1, 'coder', {});
    try {
      expect(phaseJobAddArguments(queue, name, data, opts, 1)).toHaveLength(13);
      expect(() => phaseJobAddArguments(queue, name, data, { ...opts, sizeLimit: 10 }, 1)).toThrow('The size of job code exceeds the limit 10 bytes');
      // BullMQ's id rules, as queue.add applies them: a run id with a `:` gives a job id BullMQ refuses.
      expect(() => phaseJobAddArguments(queue, name, data, { ...opts, jobId: 'a:b.code.1' }, 1)).toThrow('Custom Id cannot contain :');
      expect(() => phaseJobAddArguments(queue, name, data, { ...opts, jobId: '42' }, 1)).toThrow('Custom Id cannot be integers');
    } finally {
      await queue.close();
    }
  });

  it('refuses a phase job whose timestamp is not a number before it writes anything', async () => {
    const runId = 'bad-timestamp';
    const runKeys = runKeysOf(runId);
    const queue = new Queue(agentQueueName('coder'), { connection: redis, prefix });
    const apply = storeCommand<(...args: string[]) => Promise<number>>(redis, 'applyDecision');
    const workflow = compileWorkflow({ name: 'w', agents: ['coder'], phases: [{ name: 'code', agent: 'coder' }] });
    const meta = metaOf(runId, workflow);
    const { name, data, opts } = phaseJobRequest(meta, workflow.phases[0]!, 1, 'coder', {});
    const args = phaseJobAddArguments(queue, name, data, opts, 1);
    args[10] = 'soon';
    try {
      await redis.hset(runKeys[0] as string, 'version', '0', 'state', '{"v":0}');
      await expect(apply(...runKeys, '0', '1', '{"v":1}', '', runId, '0', '', '1000', '0', '[]', '[]', '[]', '[]', '[]', '1', `${prefix}:fair:bad`, queue.toKey(''), opts.jobId, '100', '1000', ...args)).rejects.toThrow('timestamp "soon" is not a number');
      expect(await redis.hgetall(runKeys[0] as string)).toEqual({ version: '0', state: '{"v":0}' });
      expect(await queue.getJob(opts.jobId)).toBeUndefined();
    } finally {
      await queue.close();
    }
  });

  it('drops the earlier outbox entries the commit carries out, when it lands: the run leaves the outboxes set when nothing is left, and is aged from the commit when only its own entry is', async () => {
    const runId = 'carries-out';
    const runKeys = runKeysOf(runId);
    const apply = storeCommand<Call>(redis, 'applyDecision');
    const commit = (expected: number, next: number, entry: string, carried: number[], at: string) =>
      apply(...runKeys, String(expected), String(next), `{"v":${next}}`, '', runId, '0', entry, at, '0', '[]', '[]', '[]', '[]', JSON.stringify(carried.map(String)), '0');
    await redis.hset(runKeys[0] as string, 'version', '0', 'state', '{"v":0}');
    // The create's entry (version 0), pending since 100.
    await redis.hset(runKeys[5] as string, '0', '[{"type":"start_run"}]');
    await redis.zadd(runKeys[6] as string, 100, runId);

    // Fenced out: the entry stays.
    expect(await commit(5, 6, '', [0], '200')).toBe(0);
    expect(await redis.hkeys(runKeys[5] as string)).toEqual(['0']);
    // The start commit carries it out and leaves nothing: the run leaves the outboxes set.
    expect(await commit(0, 1, '', [0], '300')).toBe(1);
    expect(await redis.hlen(runKeys[5] as string)).toBe(0);
    expect(await redis.zscore(runKeys[6] as string, runId)).toBeNull();

    // An entry left by version 1 (pending since 400); the next commit carries it out and leaves its own.
    await redis.hset(runKeys[5] as string, '1', '[{"type":"cancel"}]');
    await redis.zadd(runKeys[6] as string, 400, runId);
    expect(await commit(1, 2, '[{"type":"cancel"}]', [1], '500')).toBe(1);
    expect(await redis.hkeys(runKeys[5] as string)).toEqual(['2']);
    expect(await redis.zscore(runKeys[6] as string, runId)).toBe('500');
  });

  it('maps its outcome codes: 1 and 0 are no error, -1 is RUN_NOT_FOUND, anything else INTERNAL naming the code', () => {
    expect(commandError('applyDecision', 1, 'r')).toBeUndefined();
    expect(commandError('applyDecision', 0, 'r')).toBeUndefined();
    expect(commandError('applyDecision', -1, 'r')).toMatchObject({ code: 'RUN_NOT_FOUND' });
    expect(commandError('applyDecision', 7, 'r')).toMatchObject({ code: 'INTERNAL', message: expect.stringContaining('unknown code 7') as unknown });
    expect(commandError('admitRun', -1, 'r')).toMatchObject({ code: 'RUN_NOT_FOUND' });
  });
});

describe('clear-outbox-2', () => {
  it('drops the versions carried out; the run leaves the outboxes set only when nothing is left, else it is aged from now', async () => {
    const outbox = `${prefix}:clear:run-outbox`;
    const outboxes = `${prefix}:clear:outbox`;
    await redis.hset(outbox, '3', '[]', '4', '[]');
    await redis.zadd(outboxes, 100, 'r');
    const clear = storeCommand<Call>(redis, 'clearOutbox');

    expect(await clear(outbox, outboxes, 'r', '2000', '3')).toBe(1);
    expect(await redis.zscore(outboxes, 'r')).toBe('2000');
    expect(await clear(outbox, outboxes, 'r', '3000', '4')).toBe(0);
    expect(await redis.zscore(outboxes, 'r')).toBeNull();
  });
});

describe('claim-due-1', () => {
  it('takes at most N members due by now and moves each to its lease end; members not due stay where they are', async () => {
    const set = `${prefix}:claim`;
    await redis.zadd(set, 10, 'a', 20, 'b', 30, 'c', 500, 'later');
    const claim = storeCommand<Call>(redis, 'claimDue');

    expect(await claim(set, '100', '900', '2')).toEqual(['a', 'b']);
    expect(await redis.zrange(set, '0', '-1', 'WITHSCORES')).toEqual(['c', '30', 'later', '500', 'a', '900', 'b', '900']);
    // Leased members are not due again until the lease ends.
    expect(await claim(set, '100', '950', '10')).toEqual(['c']);
    expect(await claim(set, '901', '2000', '10')).toEqual(['later', 'a', 'b']);
  });
});

describe('fair-priority-1', () => {
  const group = `${prefix}:fair:agent-coder:acme`;
  const jobs = `${prefix}:agent-coder:`;
  const job = (id: string, fields: string[] = ['name', 'code']) => redis.hset(`${jobs}${id}`, ...fields);

  it("counts the key's jobs still queued; a job its commit dropped no longer counts, and one removed without a commit is dropped when it reaches the head", async () => {
    const priority = storeCommand<(...args: string[]) => Promise<number>>(redis, 'fairPriority');
    const place = (id: string) => priority(group, jobs, id, '100', '1000');
    for (const id of ['j1', 'j2', 'j3']) await job(id);

    expect(await place('j1')).toBe(100);
    expect(await place('j2')).toBe(101);
    expect(await place('j3')).toBe(102);
    // The same job again gets the number it got.
    expect(await place('j2')).toBe(101);

    // j2 ended by its commit (apply-decision-7 drops it): two of the key's jobs still count, and the
    // next job still goes behind the key's last one.
    await redis.zrem(group, 'j2');
    await job('j4');
    expect(await place('j4')).toBe(102);
    expect(await redis.zrange(group, '0', '-1')).toEqual(['j1', 'j3', 'j4']);

    // j3 removed by hand (no commit): counted while j1, still queued, is ahead of it.
    await redis.del(`${jobs}j3`);
    await job('j5');
    expect(await place('j5')).toBe(103);
    expect(await redis.zrange(group, '0', '-1')).toEqual(['j1', 'j3', 'j4', 'j5']);
    // j1 finished without its commit's drop (BullMQ keeps `finishedOn`): the next add drops it and
    // j3 behind it, and stops at j4, still queued.
    await job('j1', ['finishedOn', '1']);
    await job('j6');
    expect(await place('j6')).toBe(103);
    expect(await redis.zrange(group, '0', '-1')).toEqual(['j4', 'j5', 'j6']);
  });
});
