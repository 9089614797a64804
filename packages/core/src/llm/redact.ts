/**
 * Removing a provider API key from an error before it leaves the client: the provider may echo the
 * key anywhere in its reply (the message, a header such as `request-id`, `error.details`), and the
 * error's message, details and cause reach logs, results, the run hash and the run's events.
 */
import { inspect } from 'node:util';
import { FleetError } from '../errors.js';

const REDACTED = '[redacted]';

/**
 * A copy of `value` with every occurrence of `secret` in its strings (keys included) replaced by
 * `[redacted]`. Values nested deeper than 32 levels are dropped (provider error details are small).
 */
export function redactDeep<T>(value: T, secret: string, depth = 0): T {
  if (!secret) return value;
  if (typeof value === 'string') return value.split(secret).join(REDACTED) as T;
  if (value === null || typeof value !== 'object') return value;
  if (depth > 32) return REDACTED as T;
  if (Array.isArray(value)) return value.map((v: unknown) => redactDeep(v, secret, depth + 1)) as T;
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [redactDeep(k, secret), redactDeep(v, secret, depth + 1)])) as T;
}

/**
 * The same error with `secret` removed from its message, its details and its cause (a cause that
 * holds the secret is replaced by a plain `Error` with its redacted message and stack).
 */
export function redactError(err: FleetError, secret: string): FleetError {
  if (!secret) return err;
  const original = err.cause;
  const causeText = original === undefined ? '' : original instanceof Error ? `${original.message}\n${original.stack ?? ''}` : inspect(original);
  const leaks = causeText.includes(secret);
  // Nothing to remove: the same error (callers may compare it with an abort reason).
  if (!leaks && !`${err.message}\n${err.stack ?? ''}\n${JSON.stringify(err.details ?? null)}`.includes(secret)) return err;
  let cause: unknown = original;
  if (leaks) {
    const text = original instanceof Error ? original.message : inspect(original);
    const plain = new Error(redactDeep(text, secret));
    plain.name = original instanceof Error ? original.name : 'Error';
    if (original instanceof Error && original.stack) plain.stack = redactDeep(original.stack, secret);
    cause = plain;
  }
  const redacted = new FleetError(err.code, redactDeep(err.message, secret), {
    retryable: err.retryable,
    ...(err.details ? { details: redactDeep(err.details, secret) } : {}),
    ...(cause !== undefined ? { cause } : {}),
  });
  if (err.stack) redacted.stack = redactDeep(err.stack, secret);
  return redacted;
}
