/**
 * Budgets (issue 8): caps on what a run, or one phase, may spend on model calls.
 *
 * In a workflow file, `budget: {max_tokens, max_cost_usd}` at the top level caps the whole run and
 * on a phase caps that phase (all its iterations and attempts). A request may set a run budget too
 * (`fleet run --max-cost-usd`, the HTTP body's `budget`); the tighter of the two applies.
 *
 * Tokens count everything billed: input, output, cache reads and cache writes. Cost is in USD from
 * the price table. A phase that would exceed a budget fails with `BUDGET_EXCEEDED` (not retried).
 */
import { z } from 'zod';

/** A budget as written in a workflow file or a request (snake_case). */
export const BudgetSchema = z.strictObject({
  /** Tokens (input + output + cache reads + cache writes) the run or phase may use. */
  max_tokens: z.number().int().positive('budget.max_tokens must be a positive integer').optional(),
  /** USD the run or phase may spend, from the price table. */
  max_cost_usd: z.number().positive('budget.max_cost_usd must be > 0').optional(),
});
export type BudgetFile = z.infer<typeof BudgetSchema>;

/** A compiled budget; an absent field is no cap. */
export interface Budget {
  maxTokens?: number | undefined;
  maxCostUsd?: number | undefined;
}

/** snake_case budget → {@link Budget}; undefined when it caps nothing. */
export function compileBudget(file: BudgetFile | undefined): Budget | undefined {
  if (!file || (file.max_tokens === undefined && file.max_cost_usd === undefined)) return undefined;
  return { maxTokens: file.max_tokens, maxCostUsd: file.max_cost_usd };
}

/** The tighter of two budgets, field by field. */
export function tighterBudget(a: Budget | undefined, b: Budget | undefined): Budget | undefined {
  if (!a) return b;
  if (!b) return a;
  const min = (x: number | undefined, y: number | undefined) => (x === undefined ? y : y === undefined ? x : Math.min(x, y));
  return { maxTokens: min(a.maxTokens, b.maxTokens), maxCostUsd: min(a.maxCostUsd, b.maxCostUsd) };
}
