/**
 * What the analytics routes read of runs Redis holds: a {@link RunFact} per run (from its result once
 * it finished, else its state and definition), in pipelines of 500.
 */
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
    const runs = await ctx.store.readRuns(batch, { withResult: true });
    runs.forEach((run, j) => {
      if (userId !== undefined && labels[j]?.user_id !== userId) return;
      owned++;
      if (!run) return;
      const { result } = run;
      if (result) {
        facts.push({
          workflow: result.workflow.name,
          status: result.status,
          createdAt: Date.parse(result.created_at),
          durationMs: result.duration_ms,
          tokens: result.usage.input_tokens + result.usage.output_tokens,
          costUsd: result.usage.cost_usd ?? 0,
          errorCode: result.errors[0]?.error.code ?? null,
        });
      } else {
        facts.push({ workflow: run.meta.workflow.name, status: run.state.status, createdAt: run.meta.created_at });
      }
    });
  }
  return { facts, owned };
}
