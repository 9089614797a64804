import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader, type HistogramMetricData } from '@opentelemetry/sdk-metrics';
import { afterAll, describe, expect, it } from 'vitest';
import { initialRunState } from '../scheduler/decide.js';
import { compileWorkflow } from '../workflow/compile.js';
import { MetricNames, recordRunEvents } from './metrics.js';

class TestReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const reader = new TestReader();
const provider = new MeterProvider({ readers: [reader] });
metrics.setGlobalMeterProvider(provider);
afterAll(async () => {
  metrics.disable();
  await provider.shutdown();
});

describe('fleet.run.prompt_cache.hit_ratio', () => {
  it("records a finished run's share of prompt tokens read from the cache, once per run, none for a run without prompt tokens", async () => {
    const wf = compileWorkflow({ name: 'wf', agents: ['worker'], phases: [{ name: 'a', agent: 'worker' }] });
    const state = initialRunState(wf, 0);
    state.usage = { input_tokens: 100, output_tokens: 50, cache_read_input_tokens: 300, cache_creation_input_tokens: 100 };
    recordRunEvents(wf, state, [{ type: 'run_finished', at: 10, status: 'completed', duration_ms: 10 }]);
    recordRunEvents(wf, initialRunState(wf, 0), [{ type: 'run_finished', at: 10, status: 'failed', duration_ms: 10 }]);
    const { resourceMetrics } = await reader.collect();
    const metric = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === MetricNames.RunPromptCacheHitRatio) as HistogramMetricData | undefined;
    expect(metric?.descriptor.unit).toBe('1');
    expect(metric?.dataPoints).toHaveLength(1);
    expect(metric?.dataPoints[0]?.attributes).toMatchObject({ 'fleet.run.status': 'completed' });
    // 300 reads / (100 uncached + 300 reads + 100 writes).
    expect(metric?.dataPoints[0]?.value).toMatchObject({ count: 1, sum: 0.6 });
  });
});
