/**
 * How a phase's model calls are sent and cached, as written in a workflow file (at the top level as
 * the default for every phase, and on a phase):
 *
 * - `prompt_cache_ttl: 5m | 1h`: how long the provider keeps the cacheable prompt prefix (Anthropic
 *   `cache_control.ttl`). `1h` suits runs whose phases are minutes apart; its cache writes cost 2×
 *   input instead of 1.25× (reads 0.1× either way). See
 *   https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching#1-hour-cache-duration
 * - `mode: direct | batch`: `batch` sends the phase's calls through the Message Batches API at half
 *   price; the phase waits for the batch (its worker slot is free meanwhile) for at most
 *   `batch_timeout` seconds. See https://docs.anthropic.com/en/docs/build-with-claude/batch-processing
 *
 * Documented for users in docs/spending.md.
 */
import { z } from 'zod';

/** `prompt_cache_ttl` values (Anthropic's `cache_control.ttl`). */
export const PromptCacheTtlSchema = z.enum(['5m', '1h'], { error: 'prompt_cache_ttl must be "5m" or "1h"' });
export type PromptCacheTtl = z.infer<typeof PromptCacheTtlSchema>;

/** `mode` values: `direct` (one Messages API call at a time) or `batch` (Message Batches API). */
export const CallModeSchema = z.enum(['direct', 'batch'], { error: 'mode must be "direct" or "batch"' });
export type CallMode = z.infer<typeof CallModeSchema>;

/** The Batches API ends a batch after 24 hours: the default and the largest `batch_timeout`, s. */
export const MAX_BATCH_TIMEOUT_S = 24 * 3600;

/** `batch_timeout`: seconds a batch phase waits for its batch before the attempt fails with `PHASE_TIMEOUT`. */
export const BatchTimeoutSchema = z
  .number()
  .positive('batch_timeout is in seconds and must be > 0, e.g. 3600')
  .max(MAX_BATCH_TIMEOUT_S, `batch_timeout is at most ${MAX_BATCH_TIMEOUT_S} s (the Batches API ends a batch after 24 h)`);

/** The fields above, spread into the phase and workflow schemas. */
export const SPENDING_FIELDS = {
  prompt_cache_ttl: PromptCacheTtlSchema.optional(),
  mode: CallModeSchema.optional(),
  batch_timeout: BatchTimeoutSchema.optional(),
};
