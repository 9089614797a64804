import { describe, expect, it } from 'vitest';
import { FleetError, abortError, toFleetError } from './errors.js';

describe('FleetError factories', () => {
  it('retryable and nonRetryable state the retry decision over the code table', () => {
    expect(FleetError.retryable('INVALID_INPUT', 'x').retryable).toBe(true);
    expect(FleetError.nonRetryable('PROVIDER_OVERLOADED', 'x').retryable).toBe(false);
    expect(new FleetError('PROVIDER_OVERLOADED', 'x').retryable).toBe(true);
  });

  it('retryAfter carries a typed retryAfterMs that survives the wire as details.retry_after_ms', () => {
    const err = FleetError.retryAfter('PROVIDER_RATE_LIMITED', 'slow down', 2500, { details: { status: 429 } });
    expect(err.retryable).toBe(true);
    expect(err.retryAfterMs).toBe(2500);
    const wire = JSON.parse(JSON.stringify(err)) as ReturnType<FleetError['toJSON']>;
    expect(wire.details).toEqual({ status: 429, retry_after_ms: 2500 });
    const back = FleetError.fromJSON(wire);
    expect([back.code, back.retryable, back.retryAfterMs]).toEqual(['PROVIDER_RATE_LIMITED', true, 2500]);
  });

  it('ignores a retry-after that is not a delay', () => {
    expect(new FleetError('PROVIDER_RATE_LIMITED', 'x', { retryAfterMs: Number.NaN }).retryAfterMs).toBeUndefined();
    expect(new FleetError('PROVIDER_RATE_LIMITED', 'x', { details: { retry_after_ms: -5 } }).retryAfterMs).toBeUndefined();
    expect(new FleetError('PROVIDER_RATE_LIMITED', 'x').details).toBeUndefined();
  });

  it('toFleetError keeps a FleetError and wraps anything else with its cause', () => {
    const own = new FleetError('RUN_NOT_FOUND', 'no run');
    expect(toFleetError(own)).toBe(own);
    const cause = new Error('boom');
    const wrapped = toFleetError(cause, 'TOOL_FAILED');
    expect([wrapped.code, wrapped.message, wrapped.cause]).toEqual(['TOOL_FAILED', 'boom', cause]);
  });
});

describe('abortError', () => {
  it('is PHASE_TIMEOUT when the timeout fired (a TimeoutError reason)', () => {
    const c = new AbortController();
    c.abort(new DOMException('the attempt ran out of its 20 ms', 'TimeoutError'));
    const err = abortError(c.signal, { what: 'the call' });
    expect([err.code, err.retryable]).toEqual(['PHASE_TIMEOUT', true]);
    expect(err.message).toBe('the call was aborted: the phase timeout passed (the attempt ran out of its 20 ms)');
  });

  it('is PHASE_CANCELLED, not retried, for a cancel by the manager', () => {
    const c = new AbortController();
    c.abort('cancelled by the manager');
    const err = abortError(c.signal, { what: 'the attempt' });
    expect([err.code, err.retryable, err.message]).toEqual(['PHASE_CANCELLED', false, 'the attempt was cancelled: cancelled by the manager']);
  });

  it("lets the caller's knowledge of a timeout win over the reason", () => {
    const c = new AbortController();
    c.abort('cancelled by the manager');
    expect(abortError(c.signal, { timedOut: false }).code).toBe('PHASE_CANCELLED');
    const t = new AbortController();
    t.abort(new DOMException('late', 'TimeoutError'));
    expect(abortError(t.signal, { timedOut: false }).code).toBe('PHASE_CANCELLED');
    expect(abortError(c.signal, { timedOut: true }).code).toBe('PHASE_TIMEOUT');
  });

  it('gives back a FleetError reason as it is', () => {
    const reason = new FleetError('BUDGET_EXCEEDED', 'over budget');
    const c = new AbortController();
    c.abort(reason);
    expect(abortError(c.signal)).toBe(reason);
  });
});
