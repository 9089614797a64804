/**
 * Following a run from Redis, as `fleet run` does, for the commands that act on a run started
 * elsewhere: `fleet watch <run_id>` (without `--manager-url`), `fleet resume --follow` and
 * `fleet rerun --follow`. Progress is drawn by progress.ts; the end is the run's `run_finished`.
 */
import { FleetClient, FleetError, assertRedisReachable, createRedis, loadConfig, type RunResult } from '@agentfleet/core';
import { progressDisplay, wantsLiveProgress, type ProgressDisplay } from './progress.js';
import { EXIT, say } from './shared.js';
import { summary } from './run.js';
import { artifactsDirOf, rerunArtifactsDir, writeRunArtifacts } from './run-artifacts.js';

/** A Redis connection as `createRedis` opens it. */
type Redis = ReturnType<typeof createRedis>;

/** How long `fleet resume --follow` waits for a manager to resume the run, ms. */
export const RESUME_WAIT_MS = 30_000;

/** The id of the newest event of a run's stream, or `0` when it has none. */
export async function lastEventId(client: FleetClient, runId: string): Promise<string> {
  const [newest] = await client.store.redis.xrevrange(client.store.eventsKey(runId), '+', '-', 'COUNT', 1);
  return newest?.[0] ?? '0';
}

/**
 * Wait until the run's stream holds an event of `type` after `afterId`, up to `waitMs`.
 *
 * @returns true when it came.
 */
export async function awaitRunEvent(client: FleetClient, blocking: Redis, runId: string, afterId: string, type: string, waitMs: number): Promise<boolean> {
  const until = Date.now() + waitMs;
  let last = afterId;
  while (Date.now() < until) {
    for (const e of await client.store.readEvents(runId, last, Math.max(1, Math.min(1000, until - Date.now())), blocking)) {
      last = e.id;
      if (e.event.type === type) return true;
    }
  }
  return false;
}

/**
 * Follow `runId` until it finishes, drawing its events (after `afterId`) as `fleet run` does.
 *
 * @param json - `--json`: plain lines only (no live status), whatever stderr is.
 */
export async function followRun(client: FleetClient, blocking: Redis, runId: string, options: { json: boolean; afterId?: string }): Promise<RunResult> {
  const display: ProgressDisplay = progressDisplay({ runId: () => runId, live: wantsLiveProgress(options.json) });
  try {
    return await client.follow(runId, blocking, (e) => display.event(e.event), options.afterId ?? '0');
  } finally {
    display.close();
  }
}

/** Print a followed run's end (the result JSON with `--json`, else `fleet run`'s summary) and return its exit status. */
export function printEnd(result: RunResult, json: boolean): number {
  if (json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else process.stdout.write(summary(result));
  return result.status === 'completed' ? EXIT.ok : EXIT.failed;
}

/**
 * Run `fn` with a client and a connection for blocking reads on the configured Redis.
 *
 * @throws FleetError `REDIS_UNAVAILABLE` (exit 2) when Redis does not answer; what `fn` throws.
 */
export async function withFollower<T>(fn: (client: FleetClient, blocking: Redis) => Promise<T>): Promise<T> {
  const config = loadConfig();
  await assertRedisReachable(config.redisUrl);
  const redis = createRedis(config.redisUrl, { name: 'fleet-cli' });
  const blocking = createRedis(config.redisUrl, { forWorker: true, name: 'fleet-cli-follow' });
  const client = new FleetClient(redis, config.queuePrefix);
  try {
    return await fn(client, blocking);
  } finally {
    await client.close();
    blocking.disconnect();
    redis.disconnect();
  }
}

/**
 * `fleet resume <run_id> --follow`: resume, follow the run from its resume to its end, rewrite its
 * artifacts (in `out`, else where they were written: the run's `artifacts_dir`, or `runs/<run_id>`
 * when that exists here), and print its end.
 *
 * @returns the exit status: 0 completed, 1 failed or cancelled (or no manager resumed it).
 * @throws FleetError `INVALID_STATE` when the run is neither failed nor cancelled.
 */
export async function resumeAndFollow(client: FleetClient, blocking: Redis, runId: string, options: { json: boolean; out?: string | undefined }): Promise<number> {
  const before = await lastEventId(client, runId);
  await client.resume(runId);
  say(`run ${runId} resume requested`);
  // The manager carries out a resume: without one nothing happens, which is worth saying.
  if (!(await awaitRunEvent(client, blocking, runId, before, 'run_resumed', RESUME_WAIT_MS))) {
    say(`run ${runId} was not resumed within ${RESUME_WAIT_MS / 1000}s: is a manager running (\`fleet manager\`)?`);
    return EXIT.failed;
  }
  const result = await followRun(client, blocking, runId, { json: options.json, afterId: before });
  const out = options.out ?? (await artifactsDirOf(client, runId));
  const dir = out ? await writeRunArtifacts(client, result, (await client.store.getRun(runId)).meta.workflow.output, out) : null;
  return printEnd({ ...result, artifacts_dir: dir }, options.json);
}

/**
 * `fleet rerun <run_id> --from <phase> --follow`: start the rerun, follow it to its end, write its
 * artifacts (in `out`, else beside the original's: see {@link rerunArtifactsDir}), and print its end.
 *
 * @returns the exit status: 0 completed, 1 failed or cancelled.
 * @throws FleetError `INVALID_INPUT` for a phase the workflow does not have.
 */
export async function rerunAndFollow(client: FleetClient, blocking: Redis, runId: string, options: { from: string; requirements?: string | undefined; json: boolean; out?: string | undefined }): Promise<number> {
  const newId = await client.rerun(runId, { from: options.from, ...(options.requirements !== undefined ? { requirements: options.requirements } : {}) });
  say(`run ${newId} re-runs ${runId} from "${options.from}"`);
  const result = await followRun(client, blocking, newId, { json: options.json });
  const original = options.out ? undefined : await artifactsDirOf(client, runId);
  const out = options.out ?? (original ? rerunArtifactsDir(original, runId, newId) : undefined);
  const dir = out ? await writeRunArtifacts(client, result, (await client.store.getRun(newId)).meta.workflow.output, out) : null;
  return printEnd({ ...result, artifacts_dir: dir }, options.json);
}

/** Refuse `--out` without `--follow`: the artifacts are written when the followed run ends. */
export function checkFollowOut(follow: boolean, out: string | undefined): void {
  if (out !== undefined && !follow) throw new FleetError('INVALID_INPUT', '--out needs --follow: the artifacts are written when the followed run ends');
}
