/**
 * The checks around every model call of a phase: budgets ({@link budgetGate}) and the fleet-wide
 * rate limiter ({@link rateLimitGate}). Both are {@link CallGate}s for `runRole`.
 */
import {
  BUDGET_EVENT,
  FleetError,
  type BudgetLedger,
  type BudgetWaitPrompt,
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
  /** The scope's name in the run's budget ledger: `run` or `phase:<name>`. @defaultValue `run` */
  ledgerScope?: string | undefined;
}

/**
 * Thrown by {@link budgetGate} before a call that would pass a budget whose `on_exceed` is `wait`:
 * the worker commits the phase as waiting for a `budget` event (no attempt counted as failed).
 */
export class BudgetWait extends Error {
  override readonly name = 'BudgetWait';
  constructor(readonly prompt: BudgetWaitPrompt) {
    super(prompt.message);
  }
}

/** Where {@link budgetGate} keeps what calls hold and spent, shared by every phase of the run. */
export interface BudgetGateLedger {
  ledger: BudgetLedger;
  runId: string;
  /** How long a reservation holds if its holder dies without settling, ms (the attempt's timeout and a grace). */
  holdMs: number;
  /**
   * Told once per call that waits in place because calls in flight of other phases hold what it
   * needs (it asks again when they settle). @defaultValue none
   */
  onHeld?: ((info: { scope: string; limit: 'max_cost_usd' | 'max_tokens'; max: number; spent: number; reserved: number }) => void) | undefined;
  /** First wait between asks while other calls hold the budget, ms; doubles up to 2 s. @defaultValue 50 */
  heldRetryMs?: number | undefined;
  /**
   * Whether a call was already sent by an earlier take of the attempt (a batch-mode call whose batch
   * was submitted): it is not checked or held again, only settled when its reply is first handed out.
   */
  sentBefore?: ((call: GateCall) => Promise<boolean>) | undefined;
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
export function budgetGate(scopes: readonly BudgetScope[], prices: Readonly<Record<string, ModelPrice>> = MODEL_PRICES, ledger?: BudgetGateLedger): CallGate | undefined {
  const active = scopes.filter((s) => s.budget && (s.budget.maxTokens !== undefined || s.budget.maxCostUsd !== undefined));
  if (active.length === 0) return undefined;
  if (ledger) return ledgerBudgetGate(active, prices, ledger);
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
 * {@link budgetGate} on the run's {@link BudgetLedger}: each call reserves its input and as many output
 * tokens as every budget leaves (its output cap is lowered to that), atomically against the calls in
 * flight of other phases; after the call the reservation is settled with what was billed.
 *
 * A budget with `on_exceed: wait` makes a call that does not fit throw {@link BudgetWait}, and a reply
 * that went past it (billed already) is kept rather than thrown away; with `fail`, both are
 * `BUDGET_EXCEEDED` as without a ledger.
 */
function ledgerBudgetGate(active: readonly BudgetScope[], prices: Readonly<Record<string, ModelPrice>>, opts: BudgetGateLedger): CallGate {
  const names = active.map((s) => s.ledgerScope ?? 'run');
  const tickets = new Map<GateCall, string>();
  let capped: { call: GateCall; scope: BudgetScope } | undefined;
  const waits = (scope: BudgetScope) => scope.budget?.onExceed === 'wait';
  const refusal = (scope: BudgetScope, limit: 'max_cost_usd' | 'max_tokens', max: number, spent: number, reserved: number, call: GateCall, inputUsd: number): Error => {
    const usd = limit === 'max_cost_usd';
    const money = (x: number) => `$${x.toFixed(6)}`;
    const amount = usd ? money : (x: number) => `${x} tokens`;
    const what =
      `${scope.name} would exceed its ${limit} budget of ${usd ? `$${max}` : max}: ${amount(spent)} spent, ${amount(reserved)} held by calls in flight, ` +
      (usd ? `and this call's input costs about ${money(inputUsd)} on ${call.model}` : `and this call needs about ${call.estimatedInputTokens} input tokens`);
    const details = { scope: scope.name, [limit]: max, ...(usd ? { spent_usd: spent, reserved_usd: reserved, estimated_input_usd: inputUsd } : { spent_tokens: spent, reserved_tokens: reserved, estimated_input_tokens: call.estimatedInputTokens }) };
    if (!waits(scope)) return new FleetError('BUDGET_EXCEEDED', `${what}; raise ${scope.where} or lower the work asked for`, { details });
    return new BudgetWait({
      scope: (scope.ledgerScope ?? 'run') === 'run' ? 'run' : 'phase',
      limit,
      max,
      spent,
      reserved,
      call: { model: call.model, estimated_input_tokens: call.estimatedInputTokens, estimated_cost_usd: inputUsd },
      message: `${what}; waiting: raise it with \`fleet event ${opts.runId} ${BUDGET_EVENT} --data '{"${usd ? 'add_usd' : 'add_tokens'}": …}'\``,
    });
  };
  return {
    async before(call) {
      // Paid for (or being paid for) already: refusing it now would throw a reply away.
      if (await opts.sentBefore?.(call)) return undefined;
      const price = modelPrice(call.model, prices);
      const inputUsd = price ? (call.estimatedInputTokens * price.inputPerMTok) / 1e6 : 0;
      const scopes = active.map((s, i) => ({
        scope: names[i] as string,
        maxCostUsd: s.budget?.maxCostUsd,
        maxTokens: s.budget?.maxTokens,
        committedUsd: s.spent.cost_usd ?? 0,
        committedTokens: billedTokens(s.spent),
      }));
      const request = { inputTokens: call.estimatedInputTokens, inputUsd, outputUsdPerToken: price ? price.outputPerMTok / 1e6 : undefined, maxTokens: call.maxTokens, holdMs: opts.holdMs };
      let r = await opts.ledger.reserve(opts.runId, scopes, request);
      // Refused only for what calls in flight hold (their worst case, most of which they may not
      // use): wait for them to settle and ask again, rather than fail or pause the phase.
      let told = false;
      for (let tries = 0; !r.granted && r.reserved > 0 && fitsUnheld(r, call.estimatedInputTokens, inputUsd, price); tries++) {
        if (!told) opts.onHeld?.({ scope: r.scope, limit: r.limit, max: r.max, spent: r.spent, reserved: r.reserved });
        told = true;
        await sleep(Math.min(2000, (opts.heldRetryMs ?? 50) * 2 ** Math.min(tries, 6)), call.signal);
        r = await opts.ledger.reserve(opts.runId, scopes, request);
      }
      if (!r.granted) {
        const scope = active.find((_, i) => names[i] === r.scope) ?? active.find(() => true);
        if (!scope) throw new FleetError('INTERNAL', `the budget ledger refused scope "${r.scope}", which this phase does not count against`);
        throw refusal(scope, r.limit, r.max, r.spent, r.reserved, call, inputUsd);
      }
      tickets.set(call, r.ticket);
      const cappedBy = r.outputTokens < call.maxTokens ? active.find((s) => s.budget !== undefined) : undefined;
      capped = cappedBy ? { call, scope: cappedBy } : undefined;
      return r.outputTokens;
    },
    async after(call, reply, usage) {
      const ticket = tickets.get(call);
      tickets.delete(call);
      // A batch result handed out before was counted then: release what this take held, spend nothing.
      const spent = reply.replayed
        ? await opts.ledger.settle(opts.runId, ticket, names, 0, 0)
        : await opts.ledger.settle(opts.runId, ticket, names, usage.cost_usd, billedTokens(usage));
      active.forEach((scope, i) => {
        const b = scope.budget as Budget;
        const now = spent[i] as { usd: number; tokens: number };
        // Billed already: a scope that waits keeps the reply, its next call waits instead.
        if (waits(scope)) return;
        if (b.maxTokens !== undefined && now.tokens > b.maxTokens) {
          throw new FleetError('BUDGET_EXCEEDED', `${scope.name} exceeded its max_tokens budget of ${b.maxTokens}: ${now.tokens} tokens billed; raise ${scope.where}`, {
            details: { scope: scope.name, max_tokens: b.maxTokens, spent_tokens: now.tokens },
          });
        }
        if (b.maxCostUsd !== undefined && now.usd > b.maxCostUsd + 1e-12) {
          throw new FleetError('BUDGET_EXCEEDED', `${scope.name} exceeded its max_cost_usd budget of $${b.maxCostUsd}: $${now.usd.toFixed(6)} billed; raise ${scope.where}`, {
            details: { scope: scope.name, max_cost_usd: b.maxCostUsd, spent_usd: now.usd },
          });
        }
      });
    },
    async failed(call, err) {
      const ticket = tickets.get(call);
      tickets.delete(call);
      if (ticket) await opts.ledger.settle(opts.runId, ticket, names, 0, 0);
      // The output cap was lowered to fit the budget and the reply was cut off there.
      if (capped?.call === call && err instanceof FleetError && err.code === 'OUTPUT_INVALID' && err.details?.stop_reason === 'max_tokens') {
        const message = `the reply needed more than the ${call.maxTokens} output tokens left by ${capped.scope.name}'s budget; raise the budget`;
        if (waits(capped.scope)) {
          return new BudgetWait({
            scope: (capped.scope.ledgerScope ?? 'run') === 'run' ? 'run' : 'phase',
            limit: capped.scope.budget?.maxCostUsd !== undefined ? 'max_cost_usd' : 'max_tokens',
            max: capped.scope.budget?.maxCostUsd ?? capped.scope.budget?.maxTokens ?? 0,
            spent: capped.scope.spent.cost_usd ?? 0,
            reserved: 0,
            call: { model: call.model, estimated_input_tokens: call.estimatedInputTokens, estimated_cost_usd: 0 },
            message,
          });
        }
        return new FleetError('BUDGET_EXCEEDED', message, { cause: err, details: { max_output_tokens: call.maxTokens } });
      }
      return undefined;
    },
  };
}

/** Whether a refused call would fit were nothing held by calls in flight (at least one output token). */
function fitsUnheld(r: { limit: 'max_cost_usd' | 'max_tokens'; max: number; spent: number }, inputTokens: number, inputUsd: number, price: ModelPrice | undefined): boolean {
  if (r.limit === 'max_tokens') return r.max - r.spent - inputTokens >= 1;
  const left = r.max - r.spent - inputUsd;
  return left > 0 && (!price || price.outputPerMTok === 0 || Math.floor((left * 1e6) / price.outputPerMTok) >= 1);
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
        await limiter.pause(call.provider, call.model, err.retryAfterMs ?? 1000);
      }
      return undefined;
    },
  };
}
