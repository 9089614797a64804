import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupPrefix, redisUrl, uniquePrefix } from '../../../../test/support/redis.js';
import { BudgetLedger, type LedgerRequest, type LedgerScope } from './budget-ledger.js';

const prefix = uniquePrefix('budget-ledger');
let redis: Redis;
beforeAll(() => {
  redis = new Redis(redisUrl());
});
afterAll(async () => {
  redis.disconnect();
  await cleanupPrefix(redisUrl(), prefix);
});

// $3 / $15 per MTok: 1000 input tokens cost $0.003, an output token $0.000015.
const call = (maxTokens: number, holdMs = 60_000): LedgerRequest => ({ inputTokens: 1000, inputUsd: 0.003, outputUsdPerToken: 0.000015, maxTokens, holdMs });
const run = (maxCostUsd: number, committedUsd = 0): LedgerScope => ({ scope: 'run', maxCostUsd, committedUsd, committedTokens: 0 });

describe('BudgetLedger', () => {
  it('holds what a call may cost, lowers its output cap to what is left, and refuses the next call while the first holds the rest', async () => {
    const ledger = new BudgetLedger(redis, prefix);
    const first = await ledger.reserve('r1', [run(0.03)], call(8192));
    // ($0.03 − $0.003) / $0.000015 = 1800 output tokens.
    expect(first).toMatchObject({ granted: true, outputTokens: 1800 });
    expect(first.granted && first.heldUsd).toBeCloseTo(0.03, 12);
    const second = await ledger.reserve('r1', [run(0.03)], call(8192));
    expect(second).toMatchObject({ granted: false, scope: 'run', limit: 'max_cost_usd', max: 0.03, spent: 0 });
    expect(!second.granted && second.reserved).toBeCloseTo(0.03, 12);

    // The first call billed $0.0153: the rest is free again.
    const spent = await ledger.settle('r1', first.granted ? first.ticket : undefined, ['run'], 0.0153, 2000);
    expect(spent[0]?.usd).toBeCloseTo(0.0153, 12);
    const third = await ledger.reserve('r1', [run(0.03)], call(8192));
    expect(third).toMatchObject({ granted: true, outputTokens: Math.floor((0.03 - 0.0153 - 0.003) / 0.000015) });
  });

  it('checks every scope at once and holds in all or none; the run state counts when it knows more than the ledger', async () => {
    const ledger = new BudgetLedger(redis, prefix);
    const phase: LedgerScope = { scope: 'phase:design', maxTokens: 1500, committedUsd: 0, committedTokens: 0 };
    const r = await ledger.reserve('r2', [run(1), phase], call(8192));
    expect(r).toMatchObject({ granted: true, outputTokens: 500 });
    const refused = await ledger.reserve('r2', [run(1), phase], call(10));
    expect(refused).toMatchObject({ granted: false, scope: 'phase:design', limit: 'max_tokens' });
    // Nothing was held in the run scope by the refused call: one settle frees the run's budget.
    await ledger.settle('r2', r.granted ? r.ticket : undefined, ['run', 'phase:design'], 0, 0);
    expect(await ledger.reserve('r2', [run(0.0031)], call(8192))).toMatchObject({ granted: true, outputTokens: 6 });
    expect(await ledger.reserve('r3', [run(0.01, 0.0095)], call(8192))).toMatchObject({ granted: false, spent: 0.0095 });
  });

  it('releases the reservation of a holder that died once it expires', async () => {
    let now = 1_000_000;
    const ledger = new BudgetLedger(redis, prefix, () => now);
    expect(await ledger.reserve('r4', [run(0.03)], call(8192, 5000))).toMatchObject({ granted: true });
    expect(await ledger.reserve('r4', [run(0.03)], call(8192, 5000))).toMatchObject({ granted: false });
    now += 5000;
    expect(await ledger.reserve('r4', [run(0.03)], call(8192, 5000))).toMatchObject({ granted: true, outputTokens: 1800 });
  });
});
