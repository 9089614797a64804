/**
 * Calls sent through Anthropic's Message Batches API (`client.messages.batches`): half the price of
 * the Messages API, results within 24 hours. A batch-mode phase's call is one request in a batch of
 * its own; the worker submits it, records its batch id durably under the call's key
 * ({@link BatchRecordStore}) and gives the job back ({@link BatchPending}); when the batch has ended
 * (the manager polls open batches, see {@link AnthropicBatches.status}), the job is taken again, the
 * same key finds the same batch, and its result is the call's reply.
 *
 * A worker may die after the API accepted a batch and before its id was recorded. The API has no
 * idempotency key for `batches.create` and no metadata on a batch, so the call records its intent
 * (its deterministic `custom_id` and the time) before it submits; a take that finds the intent but
 * no record lists the batches created since (newest first, {@link INTENT_SKEW_MS} of clock skew
 * allowed), reads the results of those that ended and hold one request, and adopts the one whose
 * result carries its `custom_id`. While such a batch is still in progress (its requests cannot be
 * read before it ends) the take waits and looks again; it submits only when none of them is its own.
 *
 * Batches API: https://docs.anthropic.com/en/api/creating-message-batches,
 * https://docs.anthropic.com/en/api/listing-message-batches,
 * https://docs.anthropic.com/en/docs/build-with-claude/batch-processing
 */
import Anthropic from '@anthropic-ai/sdk';
import type { MessageBatch } from '@anthropic-ai/sdk/resources/messages/batches';
import type { Message, MessageCreateParamsNonStreaming } from '@anthropic-ai/sdk/resources/messages';
import { createHash } from 'node:crypto';
import { FleetError, type FleetErrorCode } from '../errors.js';
import type { BatchIntent, BatchRecord, LlmRequest, LlmResponse } from './types.js';

/**
 * How much earlier than its intent (the worker's clock) a batch's `created_at` (the API's clock)
 * may be and still be looked at as the one a dead take submitted, ms.
 */
export const INTENT_SKEW_MS = 5 * 60_000;

/** How long a take waits before it looks again for the batch an earlier take may have submitted, ms (without {@link BatchCall.recheckMs}). */
export const DEFAULT_BATCH_RECHECK_MS = 30_000;

/**
 * Thrown by a batch-mode call whose batch has not ended yet: the worker records the phase as waiting
 * for the batch and puts its job back until the batch ends (or the batch timeout passes).
 */
export class BatchPending extends Error {
  override readonly name = 'BatchPending';
  constructor(
    readonly record: BatchRecord,
    /** The batch was submitted by this call (not found from an earlier take). */
    readonly submitted: boolean,
    /**
     * Set while the call looks for the batch an earlier take may have submitted (`record.batch_id`
     * is then the newest batch that might be it, still in progress): take the job up again at
     * this time (epoch ms) to look again.
     */
    readonly recheckAt?: number | undefined,
  ) {
    super(recheckAt === undefined ? `waiting for message batch ${record.batch_id}` : `looking for the message batch an earlier take submitted (batch ${record.batch_id} may be it)`);
  }
}

/** A batch's state as the poller needs it. */
export type BatchStatus = 'in_progress' | 'canceling' | 'ended';

/**
 * The Batches API calls the manager makes: a batch's status, and a cancel (a run that ended, a
 * batch past its timeout).
 */
export class AnthropicBatches {
  readonly #client: Anthropic;

  constructor(client: Anthropic) {
    this.#client = client;
  }

  /**
   * The processing status of a batch.
   * @throws the SDK's errors (the caller tries again at its next poll).
   */
  async status(batchId: string, signal?: AbortSignal): Promise<BatchStatus> {
    const batch = await this.#client.messages.batches.retrieve(batchId, {}, signal ? { signal } : {});
    return batch.processing_status;
  }

  /** Ask the API to cancel a batch; errors are swallowed (a batch that ended cannot be cancelled). */
  async cancel(batchId: string): Promise<void> {
    await this.#client.messages.batches.cancel(batchId).catch(() => undefined);
  }
}

/**
 * The Batches API client the manager polls with, from the fleet's Anthropic settings
 * (`ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`); undefined without a key (no batch can have been sent).
 */
export function createAnthropicBatches(settings: { anthropicApiKey?: string | undefined; anthropicBaseUrl?: string | undefined }): AnthropicBatches | undefined {
  if (!settings.anthropicApiKey) return undefined;
  return new AnthropicBatches(new Anthropic({ apiKey: settings.anthropicApiKey, ...(settings.anthropicBaseUrl ? { baseURL: settings.anthropicBaseUrl } : {}), maxRetries: 2 }));
}

/** What {@link generateInBatch} borrows from the Messages API client. */
export interface BatchReplyConverter {
  /** The reply to the request from a `Message` (throws `OUTPUT_INVALID` as a direct call would). */
  toResponse: (message: Message) => LlmResponse;
  /** The error code of an API error type (`overloaded_error` → `PROVIDER_OVERLOADED`, …). */
  codeForErrorType: (type: string) => FleetErrorCode;
  /** An SDK error (status, connection, abort) as the direct call would throw it. */
  toFleetError: (err: unknown) => FleetError;
  /** Test seam: awaited after the API accepted a batch and before its id is recorded. */
  afterSubmit?: ((batchId: string) => Promise<void>) | undefined;
}

/**
 * Send `params` as a one-request batch, or find the batch an earlier take of the same attempt sent,
 * and return its result once the batch has ended.
 *
 * @param request - must carry `batch` (key, timeout, records).
 * @returns the reply, its usage marked `batch` (priced at half), `replayed` when an earlier take
 *   already received it.
 * @throws {@link BatchPending} while the batch runs; FleetError `PHASE_TIMEOUT` once `timeout_at`
 *   passed (the batch is cancelled), or when the batch expired (24 h); `PHASE_CANCELLED` when it was
 *   cancelled; the code of the request's error (`PROVIDER_OVERLOADED`, `PROVIDER_BAD_REQUEST`, …) when
 *   it errored; `OUTPUT_INVALID` as a direct call; the SDK's errors turned into `PROVIDER_*` codes.
 */
export async function generateInBatch(client: Anthropic, params: MessageCreateParamsNonStreaming, request: LlmRequest, convert: BatchReplyConverter): Promise<LlmResponse> {
  try {
    return await batchCall(client, params, request, convert);
  } catch (err) {
    if (err instanceof BatchPending || err instanceof FleetError) throw err;
    throw convert.toFleetError(err);
  }
}

async function batchCall(client: Anthropic, params: MessageCreateParamsNonStreaming, request: LlmRequest, convert: BatchReplyConverter): Promise<LlmResponse> {
  const call = request.batch;
  if (!call) throw new FleetError('INTERNAL', 'generateInBatch needs request.batch');
  const options = { signal: request.signal };
  let record = await call.records.get(call.key);
  if (!record) {
    const intent = await call.records.intend(call.key, { custom_id: customIdOf(call.key), at: Date.now() });
    let adopted: MessageBatch | undefined;
    if (!intent.fresh) {
      // An earlier take got as far as submitting: the API may have accepted its batch before it died.
      const found = await findSubmitted(client, intent, request.signal);
      if (found?.kind === 'open') {
        const timeoutAt = intent.at + call.timeoutMs;
        if (Date.now() >= timeoutAt) {
          throw new FleetError('PHASE_TIMEOUT', `the batch an earlier take of this call may have submitted (batch ${found.batch.id} may be it) did not end within the phase's batch_timeout of ${Math.round(call.timeoutMs / 1000)} s`, {
            details: { batch_id: found.batch.id, custom_id: intent.custom_id },
          });
        }
        throw new BatchPending({ batch_id: found.batch.id, custom_id: intent.custom_id, submitted_at: intent.at, timeout_at: timeoutAt }, false, Date.now() + (call.recheckMs ?? DEFAULT_BATCH_RECHECK_MS));
      }
      if (found) adopted = found.batch;
      // None of the batches since is its own: the earlier take died before the API accepted one.
      else await call.records.reintend(call.key, { custom_id: intent.custom_id, at: Date.now() });
    }
    const batch = adopted ?? (await client.messages.batches.create({ requests: [{ custom_id: intent.custom_id, params }] }, options));
    if (!adopted) await convert.afterSubmit?.(batch.id);
    const submittedAt = adopted ? Date.parse(adopted.created_at) : Date.now();
    record = await call.records.put(call.key, { batch_id: batch.id, custom_id: intent.custom_id, submitted_at: submittedAt, timeout_at: (adopted ? intent.at : submittedAt) + call.timeoutMs }, call.owner);
    // Another take recorded its batch first: this one is not needed.
    if (record.batch_id !== batch.id) await client.messages.batches.cancel(batch.id).catch(() => undefined);
    // An adopted batch has ended: its result is read below.
    if (!adopted || record.batch_id !== batch.id) throw new BatchPending(record, record.batch_id === batch.id && !adopted);
  }
  const batch = await client.messages.batches.retrieve(record.batch_id, {}, options);
  if (batch.processing_status !== 'ended') {
    if (Date.now() >= record.timeout_at) {
      await client.messages.batches.cancel(record.batch_id).catch(() => undefined);
      throw new FleetError('PHASE_TIMEOUT', `message batch ${record.batch_id} did not end within the phase's batch_timeout of ${Math.round((record.timeout_at - record.submitted_at) / 1000)} s; it was cancelled`, {
        details: { batch_id: record.batch_id },
      });
    }
    throw new BatchPending(record, false);
  }
  const results = await client.messages.batches.results(record.batch_id, {}, options);
  for await (const entry of results) {
    if (entry.custom_id !== record.custom_id) continue;
    const result = entry.result;
    switch (result.type) {
      case 'succeeded': {
        const first = await call.records.deliver(call.key, record);
        const reply = convert.toResponse(result.message);
        return { ...reply, usage: { ...reply.usage, batch: true }, ...(first ? {} : { replayed: true }) };
      }
      case 'errored': {
        await call.records.deliver(call.key, record);
        const type = result.error.error.type;
        throw new FleetError(convert.codeForErrorType(type), `anthropic: the batch request failed: ${type}: ${result.error.error.message}`, {
          details: { batch_id: record.batch_id, error_type: type },
        });
      }
      case 'expired':
        await call.records.deliver(call.key, record);
        throw new FleetError('PHASE_TIMEOUT', `message batch ${record.batch_id} expired (24 h) before its request was processed`, { details: { batch_id: record.batch_id } });
      case 'canceled':
        await call.records.deliver(call.key, record);
        throw new FleetError('PHASE_CANCELLED', `message batch ${record.batch_id} was cancelled before its request was processed`, { details: { batch_id: record.batch_id } });
    }
  }
  throw new FleetError('PROVIDER_BAD_REQUEST', `message batch ${record.batch_id} ended without a result for ${record.custom_id}`, { details: { batch_id: record.batch_id } });
}

/**
 * Look for the batch a dead take of the call submitted, from its intent: the batches created since
 * (the list is newest first) that hold one request; an ended one whose result carries the intent's
 * `custom_id` is it (`found`); else the newest still in progress, which might be it (`open`); else
 * none.
 */
async function findSubmitted(client: Anthropic, intent: BatchIntent, signal: AbortSignal): Promise<{ kind: 'found' | 'open'; batch: MessageBatch } | undefined> {
  let open: MessageBatch | undefined;
  for await (const batch of client.messages.batches.list({ limit: 100 }, { signal })) {
    if (Date.parse(batch.created_at) < intent.at - INTENT_SKEW_MS) break;
    const c = batch.request_counts;
    if (c.processing + c.succeeded + c.errored + c.canceled + c.expired !== 1) continue;
    if (batch.processing_status !== 'ended') {
      open ??= batch;
      continue;
    }
    for await (const entry of await client.messages.batches.results(batch.id, {}, { signal })) {
      if (entry.custom_id === intent.custom_id) return { kind: 'found', batch };
    }
  }
  return open ? { kind: 'open', batch: open } : undefined;
}

/**
 * A `custom_id` from a call key, the same for every take of the call and unique to it (it names
 * the call's batch when a take looks for it): the API allows 1-64 of `[a-zA-Z0-9_-]`, so a longer
 * key is hashed.
 */
function customIdOf(key: string): string {
  const safe = key.replace(/[^a-zA-Z0-9_-]/g, '_');
  return safe.length <= 64 ? safe : `h_${createHash('sha256').update(key).digest('base64url')}`;
}
