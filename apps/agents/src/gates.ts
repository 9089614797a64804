/**
 * The checks around every model call of a phase (issue 8): budgets ({@link budgetGate}) and the
 * fleet-wide rate limiter ({@link rateLimitGate}). Both are {@link CallGate}s for `runRole`.
 */
import {
  FleetError,
  MODEL_PRICES,
  modelPrice,
  sleep,
  type Budget,
  type ModelPrice,
  type RateLimitDecision,
  type RedisRateLimiter,
  type TokenUsage,
} from '@agentfleet/core';
import type { CallGate, GateCall } from './run-role.js';

/** All tokens billed: input, output, cache reads and cache writes. */
export function billedTokens(u: TokenUsage): number {
  return u.input_tokens + u.output_tokens + (u.cache_read_input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0);
}

/** A budget and what was spent against it before this phase attempt. */
export interface BudgetScope {
  /** `run` or `phase "coding"`: named in error messages. */
  name: string;
  budget: Budget | undefined;
  spent: TokenUsage;
  /** Where the limit is set, for the fix in the message, e.g. `budget.max_cost_usd of the workflow`. */
  where: string;
}

/**
 * A gate that keeps a phase inside its budgets and the run's.
 *
 * Before a call: the estimated input must fit in what is left, and the call's output cap is lowered
 * to what the remaining tokens or dollars can pay for, so the provider never bills past a budget
 * (up to the estimate's error and phases running at the same time). After a call: the billed usage
 * is added and checked again. A reply cut off by a lowered cap is a budget failure too.
 *
 * @throws FleetError `BUDGET_EXCEEDED` (not retried) naming the scope, the limit, what was spent and the fix.
 */
export function budgetGate(scopes: readonly BudgetScope[], prices: Readonly<Record<string, ModelPrice>> = MODEL_PRICES): CallGate | undefined {
  const active = scopes.filter((s) => s.budget && (s.budget.maxTokens !== undefined || s.budget.maxCostUsd !== undefined));
  if (active.length === 0) return undefined;
  let turnTokens = 0;
  let turnCost = 0;
  let capped: { call: GateCall; reason: string } | undefined;
  const exceeded = (scope: BudgetScope, what: string, details: Record<string, unknown>) =>
    new FleetError('BUDGET_EXCEEDED', `${scope.name} ${what}; raise ${scope.where} or lower the work asked for`, {
      details: { scope: scope.name, ...details },
    });
  return {
    before(call) {
      let cap = Number.POSITIVE_INFINITY;
      let reason = '';
      for (const scope of active) {
        const b = scope.budget as Budget;
        if (b.maxTokens !== undefined) {
          const spent = billedTokens(scope.spent) + turnTokens;
          const left = b.maxTokens - spent - call.estimatedInputTokens;
          if (left < 1) {
            throw exceeded(scope, `would exceed its max_tokens budget of ${b.maxTokens}: ${spent} tokens spent, and this call needs about ${call.estimatedInputTokens} input tokens`, {
              max_tokens: b.maxTokens,
              spent_tokens: spent,
              estimated_input_tokens: call.estimatedInputTokens,
            });
          }
          if (left < cap) [cap, reason] = [left, `${scope.name}'s max_tokens budget`];
        }
        const price = modelPrice(call.model, prices);
        if (b.maxCostUsd !== undefined && price) {
          const spent = (scope.spent.cost_usd ?? 0) + turnCost;
          const inputCost = (call.estimatedInputTokens * price.inputPerMTok) / 1e6;
          const left = b.maxCostUsd - spent - inputCost;
          const affordable = price.outputPerMTok > 0 ? Math.floor((left * 1e6) / price.outputPerMTok) : Number.POSITIVE_INFINITY;
          if (left <= 0 || affordable < 1) {
            throw exceeded(
              scope,
              `would exceed its max_cost_usd budget of $${b.maxCostUsd}: $${spent.toFixed(6)} spent, and this call's input costs about $${inputCost.toFixed(6)} on ${call.model}`,
              { max_cost_usd: b.maxCostUsd, spent_usd: spent, estimated_input_usd: inputCost },
            );
          }
          if (affordable < cap) [cap, reason] = [affordable, `${scope.name}'s max_cost_usd budget`];
        }
      }
      capped = cap < call.maxTokens ? { call, reason } : undefined;
      return Promise.resolve(Number.isFinite(cap) ? cap : undefined);
    },
    after(_call, _reply, usage) {
      turnTokens += billedTokens(usage);
      turnCost += usage.cost_usd;
      for (const scope of active) {
        const b = scope.budget as Budget;
        const tokens = billedTokens(scope.spent) + turnTokens;
        if (b.maxTokens !== undefined && tokens > b.maxTokens) {
          throw exceeded(scope, `exceeded its max_tokens budget of ${b.maxTokens}: ${tokens} tokens billed`, { max_tokens: b.maxTokens, spent_tokens: tokens });
        }
        const cost = (scope.spent.cost_usd ?? 0) + turnCost;
        if (b.maxCostUsd !== undefined && cost > b.maxCostUsd) {
          throw exceeded(scope, `exceeded its max_cost_usd budget of $${b.maxCostUsd}: $${cost.toFixed(6)} billed`, { max_cost_usd: b.maxCostUsd, spent_usd: cost });
        }
      }
      return Promise.resolve();
    },
    failed(call, err) {
      // The output cap was lowered to fit the budget and the reply was cut off there.
      if (capped?.call === call && err instanceof FleetError && err.code === 'OUTPUT_INVALID' && err.details?.stop_reason === 'max_tokens') {
        return Promise.resolve(
          new FleetError('BUDGET_EXCEEDED', `the reply needed more than the ${call.maxTokens} output tokens left by ${capped.reason}; raise the budget`, {
            cause: err,
            details: { max_output_tokens: call.maxTokens },
          }),
        );
      }
      return Promise.resolve(undefined);
    },
  };
}

/**
 * Thrown by {@link rateLimitGate} before a phase's first call when the fleet-wide limit is reached:
 * the worker puts the job back (BullMQ rate limit) without counting an attempt.
 */
export class RateLimitDeferral extends Error {
  override readonly name = 'RateLimitDeferral';
  constructor(
    readonly waitMs: number,
    readonly limit: Extract<RateLimitDecision, { admitted: false }>['limit'],
    readonly model: string,
  ) {
    super(`rate limited (${limit}) on ${model}: wait ${waitMs} ms`);
  }
}

/**
 * A gate that takes each call through the fleet-wide limiter. The first call of a phase that would
 * exceed a limit throws {@link RateLimitDeferral} (the job waits in the queue, no attempt burnt);
 * later calls of the turn (schema repairs) wait in place. Billed tokens replace the estimate after
 * the call; rate-limit headers and 429s pause every worker of the fleet for that model.
 */
export function rateLimitGate(limiter: RedisRateLimiter, onWait?: (waitMs: number, limit: string) => void): CallGate {
  const tickets = new Map<GateCall, { ticket: string; admittedAt: number }>();
  return {
    async before(call) {
      for (;;) {
        const d = await limiter.acquire(call.provider, call.model, call.estimatedInputTokens);
        if (d.admitted) {
          tickets.set(call, { ticket: d.ticket, admittedAt: Date.now() });
          return undefined;
        }
        if (call.index === 0) throw new RateLimitDeferral(d.waitMs, d.limit, call.model);
        onWait?.(d.waitMs, d.limit);
        await sleep(d.waitMs, call.signal);
      }
    },
    async after(call, reply, usage) {
      const t = tickets.get(call);
      // Dated when the request went out, as the provider counts it (a cold process may take a while).
      const late = t && call.sentAt !== undefined ? Math.max(0, call.sentAt - t.admittedAt) : 0;
      if (t) await limiter.settle(call.provider, call.model, t.ticket, usage.input_tokens + usage.cache_creation_input_tokens, usage.output_tokens, late);
      await limiter.observe(call.provider, call.model, reply.rateLimit);
    },
    async failed(call, err) {
      const t = tickets.get(call);
      if (t) await limiter.settle(call.provider, call.model, t.ticket, 0, 0);
      if (err instanceof FleetError && err.code === 'PROVIDER_RATE_LIMITED') {
        await limiter.pause(call.provider, call.model, Number(err.details?.retry_after_ms ?? 1000));
      }
      return undefined;
    },
  };
}
