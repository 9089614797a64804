/**
 * Budgets: caps on what a run, or one phase, may spend on model calls.
 *
 * In a workflow file, `budget: {max_tokens, max_cost_usd}` at the top level caps the whole run and
 * on a phase caps that phase (all its iterations and attempts). A request may set a run budget too
 * (`fleet run --max-cost-usd`, the HTTP body's `budget`); the tighter of the two applies.
 *
 * Tokens count everything billed: input, output, cache reads and cache writes. Cost is in USD from
 * the price table. A phase that would exceed a budget fails with `BUDGET_EXCEEDED` (not retried), or,
 * with `on_exceed: wait`, waits (`waiting_for: budget`) until a `budget` event raises the budget
 * (`fleet event <run_id> budget --data '{"add_usd": 2}'`). See docs/spending.md.
 */
import { z } from 'zod';

/** A budget as written in a workflow file or a request (snake_case). */
export const BudgetSchema = z.strictObject({
  /** Tokens (input + output + cache reads + cache writes) the run or phase may use. */
  max_tokens: z.number().int().positive('budget.max_tokens must be a positive integer').optional(),
  /** USD the run or phase may spend, from the price table. */
  max_cost_usd: z.number().positive('budget.max_cost_usd must be > 0').optional(),
  /**
   * What a phase does when its next call would pass the budget: `fail` with `BUDGET_EXCEEDED`, or
   * `wait` (the run is `waiting` with `waiting_for: budget` until a `budget` event raises it).
   * @defaultValue `fail`
   */
  on_exceed: z.enum(['fail', 'wait'], { error: 'budget.on_exceed must be "fail" or "wait"' }).optional(),
});
export type BudgetFile = z.infer<typeof BudgetSchema>;

/** A compiled budget; an absent field is no cap. */
export interface Budget {
  maxTokens?: number | undefined;
  maxCostUsd?: number | undefined;
  /** `wait` pauses the phase instead of failing it. @defaultValue `fail` */
  onExceed?: 'fail' | 'wait' | undefined;
}

/** snake_case budget → {@link Budget}; undefined when it sets nothing (an `on_exceed` alone applies to the other budget's caps). */
export function compileBudget(file: BudgetFile | undefined): Budget | undefined {
  if (!file || (file.max_tokens === undefined && file.max_cost_usd === undefined && file.on_exceed === undefined)) return undefined;
  return { maxTokens: file.max_tokens, maxCostUsd: file.max_cost_usd, ...(file.on_exceed ? { onExceed: file.on_exceed } : {}) };
}

/** The tighter of two budgets, field by field; `b`'s `onExceed` (the request's) wins over `a`'s. */
export function tighterBudget(a: Budget | undefined, b: Budget | undefined): Budget | undefined {
  if (!a) return b;
  if (!b) return a;
  const min = (x: number | undefined, y: number | undefined) => (x === undefined ? y : y === undefined ? x : Math.min(x, y));
  const onExceed = b.onExceed ?? a.onExceed;
  return { maxTokens: min(a.maxTokens, b.maxTokens), maxCostUsd: min(a.maxCostUsd, b.maxCostUsd), ...(onExceed ? { onExceed } : {}) };
}

/** The event type that raises a budget and resumes the phases waiting on it. */
export const BUDGET_EVENT = 'budget';

/**
 * The data of a `budget` event: how much to add to the budget that stopped the waiting phases (the
 * run's, or a phase's own when that one stopped it). At least one field.
 */
export const BudgetRaiseSchema = z
  .strictObject({
    /** USD added to `max_cost_usd`. */
    add_usd: z.number().positive('add_usd must be a number of USD > 0, e.g. {"add_usd": 2}').optional(),
    /** Tokens added to `max_tokens`. */
    add_tokens: z.number().int().positive('add_tokens must be a positive integer').optional(),
  })
  .refine((r) => r.add_usd !== undefined || r.add_tokens !== undefined, { message: 'a budget event needs add_usd or add_tokens, e.g. {"add_usd": 2}' });
export type BudgetRaiseFile = z.infer<typeof BudgetRaiseSchema>;

/** What `budget` events added to one budget so far. */
export interface BudgetRaise {
  /** USD added to `max_cost_usd`. */
  usd: number;
  /** Tokens added to `max_tokens`. */
  tokens: number;
}

/** `budget` with `raise` added to each cap it sets (a raise never creates a cap). */
export function raisedBudget(budget: Budget | undefined, raise: BudgetRaise | undefined): Budget | undefined {
  if (!budget || !raise) return budget;
  return {
    ...budget,
    maxTokens: budget.maxTokens === undefined ? undefined : budget.maxTokens + raise.tokens,
    maxCostUsd: budget.maxCostUsd === undefined ? undefined : budget.maxCostUsd + raise.usd,
  };
}
