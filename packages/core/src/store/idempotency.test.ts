/** Idempotency claims against real Redis: one claim per key, repeats, mismatches, stale takeovers, release. */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupPrefix, redisUrl, uniquePrefix } from '../../../../test/support/redis.js';
import { IdempotencyStore, STALE_CLAIM_MS, submissionFingerprint } from './idempotency.js';

const prefix = uniquePrefix('idempotency');
let redis: Redis;
const existing = new Set<string>();
let store: IdempotencyStore;

beforeAll(() => {
  redis = new Redis(redisUrl());
  store = new IdempotencyStore(redis, prefix, (id) => Promise.resolve(existing.has(id)));
});
afterAll(async () => {
  redis.disconnect();
  await cleanupPrefix(redisUrl(), prefix);
});

describe('IdempotencyStore', () => {
  it('fingerprints ignore key order but not values', () => {
    expect(submissionFingerprint({ a: 1, b: { c: [1, 2], d: 'x' } })).toBe(submissionFingerprint({ b: { d: 'x', c: [1, 2] }, a: 1 }));
    expect(submissionFingerprint({ a: 1 })).not.toBe(submissionFingerprint({ a: 2 }));
    expect(submissionFingerprint({ a: [1, 2] })).not.toBe(submissionFingerprint({ a: [2, 1] }));
  });

  it('claims once; a concurrent repeat sees the claim in progress, then the run; a different body is a mismatch', async () => {
    const claims = await Promise.all(['r1', 'r2', 'r3', 'r4'].map((id) => store.claim('k1', 'fp', id, 1000)));
    const won = claims.filter((c) => c.outcome === 'claimed');
    expect(won).toHaveLength(1);
    const winner = won[0]?.runId as string;
    expect(claims.filter((c) => c.outcome === 'in_progress').map((c) => c.runId)).toEqual([winner, winner, winner]);
    existing.add(winner);
    expect(await store.claim('k1', 'fp', 'r5', 1001)).toEqual({ outcome: 'repeat', runId: winner });
    expect(await store.claim('k1', 'other', 'r6', 1001)).toEqual({ outcome: 'mismatch', runId: winner });
  });

  it('a settled claim answers repeat even when its run is gone; an unsettled one whose run never came is taken over after the stale time', async () => {
    const first = await store.claim('k2', 'fp', 's1', 5000);
    if (first.outcome !== 'claimed') throw new Error('expected a claim');
    await store.settle('k2', first);
    expect(await store.claim('k2', 'fp', 's2', 5001)).toEqual({ outcome: 'repeat', runId: 's1' });

    const lost = await store.claim('k3', 'fp', 'dead', 5000);
    expect(lost.outcome).toBe('claimed');
    expect((await store.claim('k3', 'fp', 'next', 5000 + STALE_CLAIM_MS - 1)).outcome).toBe('in_progress');
    expect(await store.claim('k3', 'fp', 'next', 5000 + STALE_CLAIM_MS)).toMatchObject({ outcome: 'claimed', runId: 'next' });
  });

  it('a released claim frees the key; the TTL is 24 h', async () => {
    const c = await store.claim('k4', 'fp', 'x1', 9000);
    if (c.outcome !== 'claimed') throw new Error('expected a claim');
    const ttl = await redis.pttl(store.keyOf('k4'));
    expect(ttl).toBeGreaterThan(23 * 3600 * 1000);
    expect(ttl).toBeLessThanOrEqual(24 * 3600 * 1000);
    await store.release('k4', c);
    expect((await store.claim('k4', 'fp2', 'x2', 9001)).outcome).toBe('claimed');
  });
});
