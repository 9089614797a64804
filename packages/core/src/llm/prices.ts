/**
 * What model calls cost: a price table in USD per million tokens (MTok) and {@link costUsd}, which
 * prices one call's usage. Used for the `fleet.llm.cost` metric.
 *
 * Prices are Anthropic's list prices for the standard API (5-minute cache writes at 1.25× input,
 * 1-hour cache writes at 2× input, cache reads at 0.1× input; calls sent through the Message Batches
 * API cost half of all of it), as published on
 * https://docs.anthropic.com/en/docs/about-claude/pricing. Check them there before relying on the
 * metric for billing; the provider's invoice is the truth.
 */
import type { LlmUsage } from './types.js';

/** The price of one model, USD per million tokens. */
export interface ModelPrice {
  /** Input tokens that were neither read from nor written to the prompt cache. */
  inputPerMTok: number;
  /** Output tokens. */
  outputPerMTok: number;
  /** Input tokens written to the prompt cache (5-minute TTL). */
  cacheWritePerMTok: number;
  /** Input tokens read from the prompt cache. */
  cacheReadPerMTok: number;
  /** Input tokens written to the prompt cache with a 1-hour TTL. @defaultValue 2 × `inputPerMTok` */
  cacheWrite1hPerMTok?: number | undefined;
}

/** What the Message Batches API charges of the standard price (every token kind). */
export const BATCH_PRICE_FACTOR = 0.5;

function price(input: number, output: number): ModelPrice {
  return { inputPerMTok: input, outputPerMTok: output, cacheWritePerMTok: input * 1.25, cacheReadPerMTok: input * 0.1, cacheWrite1hPerMTok: input * 2 };
}

/**
 * Model-name prefix → price. The longest prefix that a model name starts with wins, so a dated id
 * (`claude-sonnet-4-5-20250929`) finds its model, and the bare family names (`claude-opus`,
 * `claude-sonnet`, `claude-haiku`) give a newer model of the family the newest price known here.
 * The offline model costs 0.
 */
export const MODEL_PRICES: Readonly<Record<string, ModelPrice>> = {
  'claude-opus-4-1': price(15, 75),
  'claude-opus-4-0': price(15, 75),
  'claude-opus-4-2': price(15, 75),
  'claude-opus-4-5': price(5, 25),
  'claude-opus-4-6': price(5, 25),
  'claude-opus': price(5, 25),
  'claude-3-opus': price(15, 75),
  'claude-sonnet-4': price(3, 15),
  'claude-sonnet': price(3, 15),
  'claude-3-7-sonnet': price(3, 15),
  'claude-3-5-sonnet': price(3, 15),
  'claude-haiku-4-5': price(1, 5),
  'claude-haiku': price(1, 5),
  'claude-3-5-haiku': price(0.8, 4),
  'claude-3-haiku': price(0.25, 1.25),
  'agentfleet-offline': price(0, 0),
};

/** The price of `model` from `table` (longest matching prefix), or undefined when none matches. */
export function modelPrice(model: string, table: Readonly<Record<string, ModelPrice>> = MODEL_PRICES): ModelPrice | undefined {
  let best: string | undefined;
  for (const prefix of Object.keys(table)) {
    if (model.startsWith(prefix) && (best === undefined || prefix.length > best.length)) best = prefix;
  }
  return best === undefined ? undefined : table[best];
}

/**
 * The cost of one call in USD: input, cache writes (5-minute and 1-hour), cache reads and output,
 * each at its rate; half of that for a call sent through the Message Batches API (`usage.batch`).
 *
 * @param usage - as the provider reported it (`input_tokens` excludes cached tokens).
 * @returns the cost in USD; 0 for a model the table does not know (and for the offline model).
 */
export function costUsd(model: string, usage: LlmUsage, table: Readonly<Record<string, ModelPrice>> = MODEL_PRICES): number {
  const p = modelPrice(model, table);
  if (p === undefined) return 0;
  const writes = usage.cache_creation_input_tokens ?? 0;
  const writes1h = Math.min(writes, usage.cache_creation_1h_input_tokens ?? 0);
  const standard =
    (usage.input_tokens * p.inputPerMTok +
      (writes - writes1h) * p.cacheWritePerMTok +
      writes1h * (p.cacheWrite1hPerMTok ?? p.inputPerMTok * 2) +
      (usage.cache_read_input_tokens ?? 0) * p.cacheReadPerMTok +
      usage.output_tokens * p.outputPerMTok) /
    1_000_000;
  return usage.batch ? standard * BATCH_PRICE_FACTOR : standard;
}
