/** Drive a system: keep `inFlight` runs going until `total` finished, timing each end to end. */
import { performance } from 'node:perf_hooks';

/** A system under test, seen from the submitting side. */
export interface Target {
  /** Submit one run; resolves once submitted with a promise of its completion. */
  submit(): Promise<{ id: string; done: Promise<void> }>;
}

export interface LoadResult {
  /** End-to-end latency of each run, submit to completion seen by the submitter, ms. */
  latencies: number[];
  /** Wall time of the whole load, ms. */
  wallMs: number;
}

export async function runLoad(target: Target, total: number, inFlight: number): Promise<LoadResult> {
  const latencies: number[] = [];
  let started = 0;
  const t0 = performance.now();
  const lane = async () => {
    while (started < total) {
      started += 1;
      const s = performance.now();
      const { done } = await target.submit();
      await done;
      latencies.push(performance.now() - s);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, total) }, lane));
  return { latencies, wallMs: performance.now() - t0 };
}
