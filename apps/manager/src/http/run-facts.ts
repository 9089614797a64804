/**
 * What the analytics routes read of runs Redis holds: a {@link RunFact} per run (from its result once
 * it finished, else its state and definition), in pipelines of 500.
 */
import type { RunMeta, RunResult, RunState } from '@agentfleet/core';
import type { RunFact } from '../archive/run-analytics.js';
import type { ApiContext } from './context.js';

/**
 * The facts of the runs `ids` that Redis still holds, only those started by `userId` when given;
 * `owned` counts the ids of that user (all of them without one), held or not.
 */
export async function runFacts(ctx: ApiContext, ids: readonly string[], userId: string | undefined): Promise<{ facts: RunFact[]; owned: number }> {
  const facts: RunFact[] = [];
  let owned = 0;
  for (let i = 0; i < ids.length; i += 500) {
    const batch = ids.slice(i, i + 500);
    const labels = userId === undefined ? [] : await ctx.labels.getMany(batch);
    const pipe = ctx.redis.pipeline();
    for (const id of batch) pipe.hmget(ctx.store.runKey(id), 'result', 'state', 'meta');
    const replies = (await pipe.exec()) ?? [];
    replies.forEach(([err, value], j) => {
      if (err) throw err;
      if (userId !== undefined && labels[j]?.user_id !== userId) return;
      owned++;
      const [resultRaw, stateRaw, metaRaw] = (value as Array<string | null> | undefined) ?? [];
      if (resultRaw) {
        const result = JSON.parse(resultRaw) as RunResult;
        facts.push({
          workflow: result.workflow.name,
          status: result.status,
          createdAt: Date.parse(result.created_at),
          durationMs: result.duration_ms,
          tokens: result.usage.input_tokens + result.usage.output_tokens,
          costUsd: result.usage.cost_usd ?? 0,
          errorCode: result.errors[0]?.error.code ?? null,
        });
      } else if (stateRaw && metaRaw) {
        const meta = JSON.parse(metaRaw) as RunMeta;
        facts.push({ workflow: meta.workflow.name, status: (JSON.parse(stateRaw) as RunState).status, createdAt: meta.created_at });
      }
    });
  }
  return { facts, owned };
}
