/**
 * End actions: what happens after a run finishes, run durably by the manager process.
 *
 * When a run finishes, the manager adds one job to the `end-actions` queue with the deterministic id
 * `<runId>.end-action` (a repeated add is a no-op). The worker here carries out the workflow's end
 * action:
 * - `api_call`: POST `{run_id, workflow, status, result}` to the target URL, signed with HMAC-SHA256
 *   (`X-Fleet-Signature: sha256=<hex>` over `<X-Fleet-Timestamp>.<body>`, see @agentfleet/core's
 *   signature module, the scheme triggers are checked with) with the template's own secret, else
 *   `FLEET_WEBHOOK_SECRET`; `X-Fleet-Delivery` names the delivery, the same across every retry of it
 *   (a stalled job taken over by another manager included), so a receiver can drop repeats; retried
 *   with exponential backoff on network errors, 408, 429 and 5xx; other 4xx answers fail at once;
 * - `workflow`: start the target template (registry or built-in) when the run completed, with the
 *   run's requirements and its results as variables (`parent_run_id`, `parent_status`,
 *   `parent_results` as JSON); linked as a child (`links.children` of the parent, `parent_run_id`
 *   label of the child);
 * - `tool_call`: add `{run_id, workflow, status, result}` to the `tool-<target>` queue for a
 *   user-run tool worker;
 * - `none`: nothing.
 *
 * Every attempt is appended to the run's event stream as an `end_action` event numbered by a counter
 * in Redis (so two managers that both ran a stalled job record attempts 1 and 2, not 1 twice), with
 * the delivery id, and `in_flight_attempts` naming attempts started elsewhere whose outcome was not
 * recorded when this one began (a takeover of a frozen or killed manager's attempt); the outcome is kept in the run's labels (`end_action`). Once a webhook was answered
 * 2xx, a later run of the same job (a stalled one, taken over) does not post it again. The run's own
 * status never changes.
 */
import { createHash } from 'node:crypto';
import {
  DELIVERY_HEADER,
  FleetClient,
  FleetError,
  RunLabelStore,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  TemplateRegistry,
  WebhookSecretStore,
  signPayload,
  signedHeaders,
  systemClock,
  toJobOutcome,
  type Clock,
  type EndActionStatus,
  type RunMeta,
  type RunResult,
} from '@agentfleet/core';
import {
  RunStore,
  hasEndAction,
  type StoredRun,
} from '@agentfleet/core/internal';
import { Queue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';

export const END_ACTIONS_QUEUE = 'end-actions';

export { DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER };

/** Name of the queue a `tool_call` end action adds to. */
export function toolQueueName(tool: string): string {
  return `tool-${tool}`;
}

export interface EndActionsOptions {
  /** Key of the webhook HMAC. Without it, `api_call` end actions fail (naming this setting). @defaultValue `FLEET_WEBHOOK_SECRET` */
  webhookSecret?: string | undefined;
  /** Attempts per end action, first included. @defaultValue 5 */
  attempts?: number;
  /** Delay before the first retry, ms; doubles on each retry. @defaultValue 1000 */
  backoffMs?: number;
  /** Timeout of one webhook request, ms. @defaultValue 10000 */
  requestTimeoutMs?: number;
  /** Provider recorded on runs a `workflow` end action starts. @defaultValue the parent run's */
  provider?: string;
  /** BullMQ lock of an end-action job, ms: past it without a renewal (a frozen manager), another manager takes the job over. @defaultValue 30000 */
  lockDurationMs?: number | undefined;
  /** How often stalled end-action jobs are looked for, ms. @defaultValue 30000 */
  stalledIntervalMs?: number | undefined;
  /**
   * The clock a webhook request's timeout runs on and attempts are dated with (epoch ms): a
   * {@link TestClock} advanced past `requestTimeoutMs` fails a request that hangs at once.
   * @defaultValue {@link systemClock}
   */
  clock?: Clock | undefined;
}

export interface EndActions {
  /**
   * Queue the end action of a finished run; idempotent per run and `round` (a run resumed and finished
   * again gets one end action per round). A workflow without one (or with `none`) queues nothing.
   */
  enqueue(meta: RunMeta, round?: number): Promise<void>;
  close(): Promise<void>;
}

/** HMAC-SHA256 signature of a webhook body, as sent in {@link SIGNATURE_HEADER} (the shared `signPayload`). */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return signPayload(secret, timestamp, body);
}

/** The `X-Fleet-Delivery` id of an end-action job: derived from its job id, so every retry and takeover sends the same. */
export function deliveryIdOf(jobId: string): string {
  return deterministicUuid(`${jobId}:delivery`);
}

/**
 * Start the end-action worker and return the producer the manager calls when a run finishes.
 *
 * @param connection - a connection made for BullMQ workers (`maxRetriesPerRequest: null`).
 */
export async function startEndActions(
  connection: Redis,
  prefix: string,
  options: EndActionsOptions = {},
  warn: (message: string) => void = () => undefined,
): Promise<EndActions> {
  const secret = options.webhookSecret ?? process.env.FLEET_WEBHOOK_SECRET;
  const attempts = options.attempts ?? 5;
  const backoffMs = options.backoffMs ?? 1000;
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const clock = options.clock ?? systemClock;
  const store = new RunStore(connection, prefix);
  const labels = new RunLabelStore(connection, prefix);
  const registry = new TemplateRegistry(connection, prefix);
  const secrets = new WebhookSecretStore(connection, prefix);
  const client = new FleetClient(connection, prefix, { clock });
  const queue = new Queue<{ run_id: string }>(END_ACTIONS_QUEUE, { connection, prefix });
  queue.on('error', () => undefined); // failures surface through the rejected add; unheard, BullMQ prints each one
  const toolQueues = new Map<string, Queue>();

  /** Keys of one end-action job's attempt counter and delivered mark (kept as long as the job). */
  const attemptsKey = (jobId: string) => `${prefix}:end-action:${jobId}:attempts`;
  const deliveredKey = (jobId: string) => `${prefix}:end-action:${jobId}:delivered`;
  /** Hash: attempt number → start (epoch ms) of each attempt whose outcome is not recorded yet. */
  const openKey = (jobId: string) => `${prefix}:end-action:${jobId}:open`;
  const KEEP_S = 30 * 24 * 3600;

  async function record(run: StoredRun, status: EndActionStatus, extra: Record<string, unknown>): Promise<void> {
    await labels.setEndAction(run.meta.run_id, status);
    await store.appendEvent(run.meta.run_id, {
      type: 'end_action',
      at: clock.now(),
      action: status.type,
      target: status.target,
      attempt: status.attempts,
      outcome: status.status,
      ...extra,
    });
  }

  async function runEndAction(job: Job<{ run_id: string }>): Promise<void> {
    const run = await store.getRun(job.data.run_id);
    const action = run.meta.workflow.endAction;
    if (!action || action.type === 'none' || !action.target) return;
    const result = run.result ?? (await store.getResult(run.meta.run_id));
    const jobId = job.id ?? `${run.meta.run_id}.end-action`;
    const deliveryId = deliveryIdOf(jobId);
    if (action.type === 'api_call' && (await connection.exists(deliveredKey(jobId))) === 1) return;
    // Numbered in Redis, not by BullMQ's attemptsMade: a stalled job run again elsewhere counts as a new attempt.
    const attempt = await connection.incr(attemptsKey(jobId));
    await connection.expire(attemptsKey(jobId), KEEP_S);
    // Attempts started elsewhere whose outcome is not recorded (a manager frozen or killed mid-attempt):
    // named in this attempt's event, so the stream says a takeover happened while they were open.
    const inFlight = (await connection.hkeys(openKey(jobId))).map(Number).sort((a, b) => a - b);
    await connection.hset(openKey(jobId), String(attempt), String(clock.now()));
    await connection.expire(openKey(jobId), KEEP_S);
    const takeover = inFlight.length > 0 ? { in_flight_attempts: inFlight } : {};
    const recorded = () => connection.hdel(openKey(jobId), String(attempt));
    // A webhook URL is shown as its origin only (it may hold a token); workflow and tool targets are names.
    const shownTarget = action.type === 'api_call' ? originOf(action.target) : action.target;
    const base = { type: action.type, target: shownTarget, attempts: attempt, updated_at: new Date(clock.now()).toISOString() };
    try {
      switch (action.type) {
        case 'api_call': {
          const statusCode = await postWebhook(action.target, result, deliveryId, run.meta.workflow.name);
          await connection.set(deliveredKey(jobId), String(attempt), 'EX', KEEP_S);
          await record(run, { ...base, status: 'succeeded', last_error: null, status_code: statusCode }, { status_code: statusCode, delivery_id: deliveryId, ...takeover });
          await recorded();
          return;
        }
        case 'workflow': {
          if (result.status !== 'completed') {
            await record(run, { ...base, status: 'skipped', last_error: `the run ${result.status}; a workflow end action starts only after a completed run` }, takeover);
            await recorded();
            return;
          }
          const childId = await startChild(run, action.target, result);
          await record(run, { ...base, status: 'succeeded', last_error: null, child_run_id: childId }, { child_run_id: childId, ...takeover });
          await recorded();
          return;
        }
        case 'tool_call': {
          let q = toolQueues.get(action.target);
          if (!q) {
            q = new Queue(toolQueueName(action.target), { connection, prefix });
            q.on('error', () => undefined); // failures surface through the rejected add
            toolQueues.set(action.target, q);
          }
          // One job per finish: a resumed run that finishes again triggers its end action again.
          await q.add('run_finished', payloadOf(result), { jobId: `${result.run_id}.tool.${run.state.resumes ?? 0}`, removeOnComplete: { age: 7 * 24 * 3600 } });
          await record(run, { ...base, status: 'succeeded', last_error: null }, { queue: q.name, ...takeover });
          await recorded();
          return;
        }
      }
    } catch (err) {
      // Whether BullMQ retries is decided by its own count (a takeover does not use up a retry).
      const outcome = toJobOutcome(err, job.attemptsMade + 1, attempts);
      const final = !outcome.willRetry;
      const statusCode = outcome.error.details?.status_code as number | undefined;
      const message = outcome.error.message;
      await record(
        run,
        { ...base, status: final ? 'failed' : 'pending', last_error: message, ...(statusCode ? { status_code: statusCode } : {}) },
        { error: message, will_retry: !final, ...(statusCode ? { status_code: statusCode } : {}), ...(action.type === 'api_call' ? { delivery_id: deliveryId } : {}), ...takeover },
      )
        .then(recorded)
        .catch((e: unknown) => warn(`end action of ${run.meta.run_id}: could not record attempt ${attempt}: ${(e as Error).message}`));
      throw outcome.thrown;
    }
  }

  async function postWebhook(url: string, result: RunResult, deliveryId: string, template: string): Promise<number> {
    const key = (await secrets.get(template)) ?? secret;
    if (!key) throw FleetError.nonRetryable('END_ACTION_FAILED', `api_call end actions need a signing key: set FLEET_WEBHOOK_SECRET on the manager, or give template "${template}" its own (fleet workflows webhook-secret ${template} --generate)`);
    const body = JSON.stringify(payloadOf(result));
    // Aborted as AbortSignal.timeout would (a TimeoutError), on the clock; the timer ends with the request.
    const timeout = new AbortController();
    const cancelTimer = clock.setTimer(timeoutMs, () => timeout.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')));
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'agentfleet-end-action',
          'x-fleet-event': 'run.finished',
          'x-fleet-run-id': result.run_id,
          // Signed afresh on each attempt (a new timestamp), under the one delivery id.
          ...signedHeaders(key, body, deliveryId),
        },
        body,
        // A redirect would re-POST the signed body somewhere else: treat it as a failure instead.
        redirect: 'manual',
        signal: timeout.signal,
      });
    } catch (err) {
      throw new FleetError('END_ACTION_FAILED', `POST ${originOf(url)} failed: ${(err as Error).message}`, { cause: err });
    } finally {
      cancelTimer();
    }
    // The answer's body is not needed: drop it rather than read it all into memory.
    await res.body?.cancel().catch(() => undefined);
    if (res.ok) return res.status;
    const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
    // Webhook URLs often carry secrets (tokens in the path or query): only the origin goes into events.
    const message = `POST ${originOf(url)} answered ${res.status}${res.status >= 300 && res.status < 400 ? ' (a redirect; webhooks do not follow redirects: use the final URL)' : ''}`;
    const details = { status_code: res.status };
    if (!retryable) throw FleetError.nonRetryable('END_ACTION_FAILED', `${message} (not retried: fix the receiver)`, { details });
    throw FleetError.retryable('END_ACTION_FAILED', message, { details });
  }

  async function startChild(run: StoredRun, template: string, result: RunResult): Promise<string> {
    const workflow = await registry.resolve(template);
    const childId = deterministicUuid(`${run.meta.run_id}:end-action:${run.state.resumes ?? 0}`);
    await client.submit({
      runId: childId,
      workflow,
      requirements: run.meta.requirements,
      variables: { parent_run_id: run.meta.run_id, parent_status: result.status, parent_results: JSON.stringify(result.results) },
      provider: options.provider ?? run.meta.provider,
    });
    await labels.set(childId, { parent_run_id: run.meta.run_id, template });
    const links = await store.getLinks(run.meta.run_id);
    if (!links.children?.includes(childId)) await store.addLink(run.meta.run_id, 'children', childId);
    return childId;
  }

  // The one error boundary: what an attempt threw (recorded above, or thrown before it began, e.g. a
  // run gone) ends the job or is retried by toJobOutcome's rule.
  const processEndAction = (job: Job<{ run_id: string }>): Promise<void> =>
    runEndAction(job).catch((err: unknown) => {
      throw toJobOutcome(err, job.attemptsMade + 1, attempts).thrown;
    });
  const worker = new Worker<{ run_id: string }>(END_ACTIONS_QUEUE, processEndAction, { connection, prefix, concurrency: 8, autorun: true, lockDuration: options.lockDurationMs ?? 30_000, stalledInterval: options.stalledIntervalMs ?? 30_000 });
  worker.on('error', (err) => warn(`end actions: ${err.message}`));
  await worker.waitUntilReady();

  return {
    async enqueue(meta, round = 0) {
      if (!hasEndAction(meta)) return;
      const runId = meta.run_id;
      await queue.add(
        'end_action',
        { run_id: runId },
        {
          jobId: round > 0 ? `${runId}.end-action.${round}` : `${runId}.end-action`,
          attempts,
          backoff: { type: 'exponential', delay: backoffMs },
          removeOnComplete: { age: 7 * 24 * 3600 },
          removeOnFail: { age: 30 * 24 * 3600 },
        },
      );
    },
    async close() {
      await worker.close();
      await Promise.all([...toolQueues.values()].map((q) => q.close()));
      await queue.close();
      await client.close();
    },
  };
}

function payloadOf(result: RunResult): { run_id: string; workflow: RunResult['workflow']; status: string; result: RunResult } {
  return { run_id: result.run_id, workflow: result.workflow, status: result.status, result };
}

/** A UUID-shaped id derived from `seed` (so a repeated end action starts the same child run). */
function deterministicUuid(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** `https://hooks.example.com` of a URL: what events and labels may show of a webhook target. */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid URL)';
  }
}
