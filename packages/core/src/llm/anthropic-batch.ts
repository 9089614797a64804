/**
 * Calls sent through Anthropic's Message Batches API (`client.messages.batches`): half the price of
 * the Messages API, results within 24 hours. A batch-mode phase's call is one request in a batch of
 * its own; the worker submits it, records its batch id durably under the call's key
 * ({@link BatchRecordStore}) and gives the job back ({@link BatchPending}); when the batch has ended
 * (the manager polls open batches, see {@link AnthropicBatches.status}), the job is taken again, the
 * same key finds the same batch, and its result is the call's reply.
 *
 * Batches API: https://docs.anthropic.com/en/api/creating-message-batches,
 * https://docs.anthropic.com/en/docs/build-with-claude/batch-processing
 */
import Anthropic from '@anthropic-ai/sdk';
import type { Message, MessageCreateParamsNonStreaming } from '@anthropic-ai/sdk/resources/messages';
import { FleetError, type FleetErrorCode } from '../errors.js';
import type { BatchRecord, LlmRequest, LlmResponse } from './types.js';

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
  ) {
    super(`waiting for message batch ${record.batch_id}`);
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
    const customId = customIdOf(call.key);
    const batch = await client.messages.batches.create({ requests: [{ custom_id: customId, params }] }, options);
    const now = Date.now();
    record = await call.records.put(call.key, { batch_id: batch.id, custom_id: customId, submitted_at: now, timeout_at: now + call.timeoutMs }, call.owner);
    // Another take recorded its batch first: this one is not needed.
    if (record.batch_id !== batch.id) await client.messages.batches.cancel(batch.id).catch(() => undefined);
    throw new BatchPending(record, record.batch_id === batch.id);
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

/** A `custom_id` from a call key: the API allows 1-64 of `[a-zA-Z0-9_-]`. */
function customIdOf(key: string): string {
  const safe = key.replace(/[^a-zA-Z0-9_-]/g, '_');
  return safe.length <= 64 ? safe : safe.slice(safe.length - 64);
}
