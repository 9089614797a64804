import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupPrefix, redisUrl, uniquePrefix } from '../../../../test/support/redis.js';
import { PHASE_OUTPUT_TTL_MS, PhaseOutputWriter, phaseOutputKey, readPhaseOutput } from './phase-output.js';

const prefix = uniquePrefix('phase-output');
let redis: Redis;
beforeAll(() => {
  redis = new Redis(redisUrl());
});
afterAll(async () => {
  redis.disconnect();
  await cleanupPrefix(redisUrl(), prefix);
});

describe('PhaseOutputWriter', () => {
  it('gathers pieces that arrive during a write into one entry per call and kind, with offsets, and an expiry', async () => {
    const ref = { run_id: 'run-1', phase: 'implementation', iteration: 1, attempt: 1 };
    const writer = new PhaseOutputWriter(redis, prefix, ref, { now: () => 1_700_000_000_000 });
    const json = JSON.stringify({ files: [{ path: 'a.js', content: 'x'.repeat(300) }] });
    for (let i = 0; i < json.length; i += 5) writer.push({ kind: 'tool_input', text: json.slice(i, i + 5), call: 0 });
    writer.push({ kind: 'thinking', text: 'hmm', call: 0 });
    writer.push({ kind: 'tool_input', text: '{"files":', call: 1 });
    await writer.flush();
    const pieces = await readPhaseOutput(redis, prefix, 'run-1');
    // The first piece went out alone; everything pushed while it was in flight went in the next write.
    expect(pieces.length).toBeLessThan(Math.ceil(json.length / 5));
    const first = pieces.filter((p) => p.delta.call === 0 && p.delta.kind === 'tool_input');
    expect(first.map((p) => p.delta.text).join('')).toBe(json);
    let offset = 0;
    for (const p of first) {
      expect(p.delta.offset).toBe(offset);
      offset += p.delta.text.length;
    }
    expect(pieces.find((p) => p.delta.kind === 'thinking')?.delta).toMatchObject({ text: 'hmm', offset: 0, call: 0 });
    expect(pieces.find((p) => p.delta.call === 1)?.delta).toMatchObject({ ...ref, type: 'phase_output_delta', kind: 'tool_input', offset: 0, text: '{"files":', at: 1_700_000_000_000 });
    const ttl = await redis.pttl(phaseOutputKey(prefix, 'run-1'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(PHASE_OUTPUT_TTL_MS);
    // Reading after the last id gives nothing new.
    expect(await readPhaseOutput(redis, prefix, 'run-1', pieces.at(-1)?.id)).toEqual([]);
  });

  it('never throws into the caller when Redis refuses the write; it reports the error', async () => {
    const broken = new Redis(redisUrl(), { lazyConnect: true, enableOfflineQueue: false });
    const errors: unknown[] = [];
    const writer = new PhaseOutputWriter(broken, prefix, { run_id: 'run-2', phase: 'p', iteration: 1, attempt: 1 }, { onError: (err) => errors.push(err) });
    writer.push({ kind: 'text', text: 'lost', call: 0 });
    await writer.flush();
    expect(errors.length).toBeGreaterThan(0);
    broken.disconnect();
  });
});
