import { describe, expect, it } from 'vitest';

import { withUnitSuffix } from './prometheus-names.js';

describe('withUnitSuffix', () => {
  it('adds the Prometheus unit suffix the OpenTelemetry compatibility spec gives', () => {
    expect(withUnitSuffix('fleet.phase.duration', 's')).toBe('fleet.phase.duration_seconds');
    expect(withUnitSuffix('fleet.llm.cost', 'USD')).toBe('fleet.llm.cost_usd');
    expect(withUnitSuffix('payload.size', 'By')).toBe('payload.size_bytes');
  });
  it('adds nothing for annotations, no unit, or a name that already ends with the suffix', () => {
    expect(withUnitSuffix('fleet.queue.jobs', '{job}')).toBe('fleet.queue.jobs');
    expect(withUnitSuffix('gen_ai.client.token.usage', '{token}')).toBe('gen_ai.client.token.usage');
    expect(withUnitSuffix('plain', '')).toBe('plain');
    expect(withUnitSuffix('wait_seconds', 's')).toBe('wait_seconds');
  });
});
