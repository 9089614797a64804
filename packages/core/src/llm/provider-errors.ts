/**
 * What every LLM provider client shares when a call fails over HTTP: the one mapping of an HTTP
 * status onto a {@link FleetErrorCode} and the one reading of `retry-after-ms` / `retry-after`.
 *
 * | status | code | retried |
 * | --- | --- | --- |
 * | 429 | `PROVIDER_RATE_LIMITED` | yes, not before the `retry-after` |
 * | 5xx (529 included), 409 | `PROVIDER_OVERLOADED` | yes |
 * | 408 | `PROVIDER_CONNECTION` | yes |
 * | 401, 402, 403 | `PROVIDER_AUTH` | no |
 * | 400, 404, 413, 422 and every other status | `PROVIDER_BAD_REQUEST` | no |
 *
 * 402 (Payment Required) is an account problem, not a fault of the request: Anthropic answers it
 * with error type `billing_error` (the SDK's `PaymentRequiredError`), and OpenAI-compatible
 * services (OpenRouter, vLLM gateways with quotas) with "insufficient credits". Resending the same
 * request never helps, fixing the key's account does, exactly as for 401 and 403.
 *
 * @see https://docs.anthropic.com/en/api/errors
 * @see https://platform.openai.com/docs/guides/error-codes
 * @see https://www.rfc-editor.org/rfc/rfc9110#field.retry-after
 */
import type { FleetErrorCode } from '../errors.js';

/** The code of an HTTP error status from a provider (see the table above). */
export function providerCodeForStatus(status: number): FleetErrorCode {
  if (status === 429) return 'PROVIDER_RATE_LIMITED';
  if (status >= 500 || status === 409) return 'PROVIDER_OVERLOADED';
  if (status === 408) return 'PROVIDER_CONNECTION';
  if (status === 401 || status === 402 || status === 403) return 'PROVIDER_AUTH';
  return 'PROVIDER_BAD_REQUEST';
}

/** Response headers as `fetch`'s `Headers` and the SDKs give them (only `get` is read). */
export interface HeaderReader {
  get(name: string): string | null;
}

/**
 * How long the server asks to wait before the next request, ms: `retry-after-ms` (ms, Anthropic's
 * and OpenAI's SDK header) first, else `retry-after` as delay-seconds or as an HTTP date (RFC 9110),
 * counted from `now`. A date in the past is 0.
 *
 * @param now - epoch ms an HTTP date is counted from. @defaultValue `Date.now()`
 * @returns undefined when neither header is there or readable (negative, not a number, not a date).
 * @example
 * parseRetryAfterMs(new Headers({ 'retry-after': '2' })); // 2000
 * parseRetryAfterMs(new Headers({ 'retry-after': 'Wed, 21 Oct 2026 07:28:00 GMT' }), Date.parse('Wed, 21 Oct 2026 07:27:30 GMT')); // 30000
 */
export function parseRetryAfterMs(headers: HeaderReader | null | undefined, now: number = Date.now()): number | undefined {
  const ms = headers?.get('retry-after-ms')?.trim();
  if (ms) {
    const value = Number(ms);
    if (Number.isFinite(value) && value >= 0) return Math.round(value);
  }
  const after = headers?.get('retry-after')?.trim();
  if (!after) return undefined;
  if (/^[+-]?\d+(\.\d+)?$/.test(after)) return after.startsWith('-') ? undefined : Math.round(Number(after) * 1000);
  // An HTTP date names its day and month (`Wed, 21 Oct 2026 07:28:00 GMT`); nothing else is read as one.
  if (!/[a-z]/i.test(after)) return undefined;
  const date = Date.parse(after);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
