/**
 * The run's budget ledger in Redis (`<p>:run:<id>:budget`): what settled model calls billed, and what
 * calls in flight hold, per budget scope (`run`, `phase:<name>`). Every call of a budgeted phase
 * reserves what it may cost before it is sent ({@link BudgetLedger.reserve}, one Lua script that checks
 * every scope and holds in all of them, or none) and settles after ({@link BudgetLedger.settle}), so
 * phases running at the same time cannot together pass a budget: the second one sees what the first
 * holds.
 *
 * A reservation is a ticket with an expiry (the attempt's timeout plus a grace): should its holder
 * die, the next reserve releases it. The ledger's keys live and expire with the run's.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { storeCommand } from './commands.js';

/** One budget a call counts against, with what the run state already shows spent against it. */
export interface LedgerScope {
  /** `run`, or `phase:<name>` for a phase's own budget. */
  scope: string;
  /** USD cap (raises included); undefined: no cost cap. */
  maxCostUsd?: number | undefined;
  /** Token cap (raises included); undefined: no token cap. */
  maxTokens?: number | undefined;
  /** USD and tokens the run state shows spent against this scope (the ledger may know more). */
  committedUsd: number;
  committedTokens: number;
}

/** What one call asks of the ledger. */
export interface LedgerRequest {
  /** Estimated input tokens. */
  inputTokens: number;
  /** Estimated input cost, USD. */
  inputUsd: number;
  /** USD per output token; undefined when the model has no price (cost is then not capped). */
  outputUsdPerToken: number | undefined;
  /** The output token cap the call would be sent with. */
  maxTokens: number;
  /** How long the reservation holds if it is never settled, ms. */
  holdMs: number;
}

/** The ledger's answer to a reservation. */
export type LedgerReservation =
  | { granted: true; ticket: string; /** Output tokens the call may use (≤ the cap it asked for). */ outputTokens: number; heldUsd: number; heldTokens: number }
  | { granted: false; scope: string; limit: 'max_cost_usd' | 'max_tokens'; max: number; spent: number; reserved: number };

type ReserveCommand = (key: string, ...args: string[]) => Promise<string[] | [number, ...string[]]>;
type SettleCommand = (key: string, ...args: string[]) => Promise<string[]>;

export class BudgetLedger {
  private readonly reserveCmd: ReserveCommand;
  private readonly settleCmd: SettleCommand;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly now: () => number = Date.now,
  ) {
    this.reserveCmd = storeCommand<ReserveCommand>(redis, 'reserveBudget');
    this.settleCmd = storeCommand<SettleCommand>(redis, 'settleBudget');
  }

  /** The ledger's key for a run. */
  key(runId: string): string {
    return `${this.prefix}:run:${runId}:budget`;
  }

  /**
   * Hold what a call may cost (its input and as many output tokens as fit, up to its cap) in every
   * scope, if at least one output token fits in each. Atomic across scopes.
   *
   * @returns the grant (the call's output cap is lowered to `outputTokens`), or which scope refused and why.
   * @throws Redis errors (nothing was held).
   */
  async reserve(runId: string, scopes: readonly LedgerScope[], request: LedgerRequest): Promise<LedgerReservation> {
    const ticket = randomUUID();
    const now = this.now();
    const num = (x: number | undefined) => (x === undefined ? '' : String(x));
    const args = [String(now), ticket, String(now + request.holdMs), String(request.inputTokens), String(request.inputUsd), num(request.outputUsdPerToken), String(request.maxTokens), String(scopes.length)];
    for (const s of scopes) args.push(s.scope, num(s.maxCostUsd), String(s.committedUsd), num(s.maxTokens), String(s.committedTokens));
    const reply = await this.reserveCmd(this.key(runId), ...args);
    if (Number(reply[0]) === 1) return { granted: true, ticket, outputTokens: Number(reply[1]), heldUsd: Number(reply[2]), heldTokens: Number(reply[3]) };
    return { granted: false, scope: String(reply[1]), limit: reply[2] === 'max_tokens' ? 'max_tokens' : 'max_cost_usd', max: Number(reply[3]), spent: Number(reply[4]), reserved: Number(reply[5]) };
  }

  /**
   * Release a call's reservation and count what it billed in every scope (a failed call: 0).
   *
   * @param ticket - the reservation's ticket; undefined when the call held nothing.
   * @returns what each scope has spent after it, in `scopes` order: USD and tokens.
   * @throws Redis errors.
   */
  async settle(runId: string, ticket: string | undefined, scopes: readonly string[], billedUsd: number, billedTokens: number): Promise<Array<{ usd: number; tokens: number }>> {
    const reply = await this.settleCmd(this.key(runId), ticket ?? '', String(billedUsd), String(billedTokens), ...scopes);
    return scopes.map((_, i) => ({ usd: Number(reply[2 * i]), tokens: Number(reply[2 * i + 1]) }));
  }
}
