/**
 * The baseline: bare BullMQ, no orchestrator. A "run" is a chain of stages, one queue each; the
 * worker of stage i does its (simulated) work and adds the job(s) of stage i+1 itself. A stage wider
 * than 1 fans out (the previous worker adds `width` jobs) and fans in with an INCR counter (the last
 * one to finish adds the next stage). The four-phase chain is `q1 → q2 → q3 → q4`, each width 1.
 *
 * Jobs carry a payload shaped like AgentFleet's phase jobs and the same options (deterministic ids,
 * 3 attempts with backoff, the same retention), so the two differ only by what AgentFleet adds:
 * durable run state with version fencing, the manager hop, the run event stream, deadlines.
 */
import { Queue, QueueEvents, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';

export interface StageSpec {
  /** Queue name. */
  queue: string;
  /** Jobs in this stage per run (1 for a chain link). */
  width: number;
  /** Simulated work per job, ms. */
  latencyMs: number;
}

/** What the workers process is told (as one JSON argument). */
export interface BullWorkersSpec {
  redisUrl: string;
  prefix: string;
  stages: StageSpec[];
  /** Jobs in flight per queue in one process. */
  concurrency: number;
  /** Queues this process serves (all when omitted). */
  serve?: string[];
}

/** Job data: the same fields and sizes as an AgentFleet phase job. */
export interface ChainJobData {
  run_id: string;
  stage: number;
  index: number;
  role: string;
  timeout_ms: number;
  max_attempts: number;
  trace: Record<string, string>;
}

/** The options AgentFleet's manager gives a phase job (3 attempts, retention a day / 50,000 jobs). */
export const CHAIN_JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { age: 24 * 3600, count: 50_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 50_000 },
};

export function chainJobData(runId: string, stage: number, index: number, spec: StageSpec): ChainJobData {
  return { run_id: runId, stage, index, role: spec.queue, timeout_ms: 300_000, max_attempts: 3, trace: {} };
}

/** Job id of one stage job: `<run>.<stage>.<index>`, like AgentFleet's `<run>.<phase>.<iteration>`. */
export function chainJobId(runId: string, stage: number, index: number): string {
  return `${runId}.${stage}.${index}`;
}

/** The submitting side, in the benchmark's driver process: adds a chain's first job, hears its last. */
export class BullChainDriver {
  private readonly redis: Redis;
  private readonly first: Queue;
  private readonly last: Queue;
  private readonly events: QueueEvents;
  private readonly eventsConnection: Redis;
  private readonly waiting = new Map<string, () => void>();
  private seq = 0;
  /** Run ids must differ between drivers on one prefix: completed jobs (and their ids) are retained. */
  private readonly tag = Math.random().toString(36).slice(2, 8);

  constructor(
    private readonly spec: BullWorkersSpec,
    readonly name: string,
  ) {
    const firstStage = spec.stages[0];
    const lastStage = spec.stages.at(-1);
    if (!firstStage || !lastStage || firstStage.width !== 1 || lastStage.width !== 1) throw new TypeError('a chain starts and ends with a stage of width 1');
    this.redis = new Redis(spec.redisUrl, { maxRetriesPerRequest: null });
    this.first = new Queue(firstStage.queue, { connection: this.redis, prefix: spec.prefix });
    this.last = firstStage.queue === lastStage.queue ? this.first : new Queue(lastStage.queue, { connection: this.redis, prefix: spec.prefix });
    this.eventsConnection = new Redis(spec.redisUrl, { maxRetriesPerRequest: null });
    this.events = new QueueEvents(lastStage.queue, { connection: this.eventsConnection, prefix: spec.prefix, autorun: true });
    this.events.on('completed', ({ jobId }) => {
      const runId = jobId.slice(0, jobId.indexOf('.'));
      const done = this.waiting.get(runId);
      if (done) {
        this.waiting.delete(runId);
        done();
      }
    });
  }

  async ready(): Promise<void> {
    await this.events.waitUntilReady();
    await this.first.waitUntilReady();
  }

  /** Submit one run; resolves once submitted with a promise of its completion. */
  async submit(): Promise<{ id: string; done: Promise<void> }> {
    const id = `${this.tag}-${++this.seq}`;
    const done = new Promise<void>((resolve) => this.waiting.set(id, resolve));
    const stage = this.spec.stages[0] as StageSpec;
    await this.first.add(stage.queue, chainJobData(id, 0, 0, stage), { ...CHAIN_JOB_OPTIONS, jobId: chainJobId(id, 0, 0) });
    return { id, done };
  }

  /** Runs finished so far (completed jobs of the last stage still retained). */
  async completedCount(): Promise<number> {
    return this.last.getCompletedCount();
  }

  async close(): Promise<void> {
    await this.events.close();
    this.eventsConnection.disconnect();
    await this.first.close();
    if (this.last !== this.first) await this.last.close();
    this.redis.disconnect();
  }
}
