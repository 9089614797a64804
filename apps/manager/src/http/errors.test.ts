import { FLEET_ERROR_CODES, FleetError, type FleetErrorCode } from '@agentfleet/core';
import { describe, expect, it } from 'vitest';
import { HTTP_STATUS, statusOf, toHttpError } from './errors.js';

describe('HTTP status of error codes', () => {
  it('names a status for every code in the code table, each an HTTP error status', () => {
    const codes = Object.keys(FLEET_ERROR_CODES) as FleetErrorCode[];
    expect(Object.keys(HTTP_STATUS).sort()).toEqual([...codes].sort());
    for (const code of codes) expect(statusOf(code), code).toBeGreaterThanOrEqual(400);
  });

  it('answers what a client did wrong with a 4xx, and what Redis or a provider did with 503 / 502', () => {
    expect(statusOf('INVALID_INPUT')).toBe(400);
    expect(statusOf('UNAUTHORIZED')).toBe(401);
    expect(statusOf('FORBIDDEN')).toBe(403);
    expect(statusOf('ROLE_NOT_FOUND')).toBe(404);
    expect(statusOf('SCHEDULE_NOT_FOUND')).toBe(404);
    expect(statusOf('INVALID_STATE')).toBe(409);
    expect(statusOf('TOO_MANY_STREAMS')).toBe(429);
    expect(statusOf('REDIS_OUT_OF_MEMORY')).toBe(503);
    expect(statusOf('PROVIDER_OVERLOADED')).toBe(502);
    expect(statusOf('INTERNAL')).toBe(500);
  });

  it('is a total table: one without a code does not compile', () => {
    // @ts-expect-error INVALID_INPUT alone is not every code
    const partial: Record<FleetErrorCode, number> = { INVALID_INPUT: 400 };
    expect(Object.keys(partial)).toHaveLength(1);
  });

  it('toHttpError keeps a FleetError and names Redis that does not answer', () => {
    const own = new FleetError('RUN_NOT_FOUND', 'no run');
    expect(toHttpError(own)).toBe(own);
    expect(toHttpError(new Error('connect ECONNREFUSED 127.0.0.1:6379')).code).toBe('REDIS_UNAVAILABLE');
    expect(toHttpError(new Error('boom')).code).toBe('INTERNAL');
  });
});
