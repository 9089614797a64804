/**
 * The one signature scheme of AgentFleet's HTTP deliveries, the same both ways: the webhooks the
 * manager sends (`api_call` end actions) and the trigger requests it receives
 * (`POST /api/triggers/:name`).
 *
 * Headers of a signed request:
 * - `X-Fleet-Timestamp: <unix seconds>`: when it was signed;
 * - `X-Fleet-Delivery: <id>`: one delivery, the same across every retry of it (a receiver keeps the ids
 *   it has processed and ignores a repeat);
 * - `X-Fleet-Signature: sha256=<hex HMAC-SHA256(secret, "<X-Fleet-Timestamp>.<raw body>")>`.
 *
 * A receiver recomputes the HMAC over the raw body (before any JSON parsing), compares it in constant
 * time, refuses a timestamp more than the tolerance ({@link DEFAULT_SIGNATURE_TOLERANCE_S}) away from
 * its clock, and refuses a delivery id (and a signature) it has already seen within that window. The
 * scheme is the one Stripe and GitHub webhooks use (https://docs.stripe.com/webhooks#verify-manually):
 * the timestamp is signed, so an old request cannot be replayed with a fresh one.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Header with the signature: `sha256=<hex>`. */
export const SIGNATURE_HEADER = 'x-fleet-signature';
/** Header with the signing time, Unix seconds; part of the signed text. */
export const TIMESTAMP_HEADER = 'x-fleet-timestamp';
/** Header with the delivery id, stable across the retries of one delivery. */
export const DELIVERY_HEADER = 'x-fleet-delivery';
/** How far a signed timestamp may be from the receiver's clock (either way), seconds. */
export const DEFAULT_SIGNATURE_TOLERANCE_S = 300;

/**
 * The signature of `body` signed at `timestamp`, as sent in {@link SIGNATURE_HEADER}.
 *
 * @param timestamp - Unix seconds, as a decimal string (exactly the {@link TIMESTAMP_HEADER} value).
 * @param body - the raw body, byte for byte as sent.
 */
export function signPayload(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * The three headers of a signed delivery.
 *
 * @param nowMs - the clock, epoch ms.
 */
export function signedHeaders(secret: string, body: string, deliveryId: string, nowMs: number = Date.now()): Record<string, string> {
  const timestamp = String(Math.floor(nowMs / 1000));
  return { [TIMESTAMP_HEADER]: timestamp, [DELIVERY_HEADER]: deliveryId, [SIGNATURE_HEADER]: signPayload(secret, timestamp, body) };
}

/** Why a signed request was refused; `ok` when it passes. */
export type SignatureCheck =
  | { ok: true; timestamp: number; deliveryId: string; signature: string }
  | { ok: false; reason: string };

/**
 * Check a signed request's headers against one secret: the signature, then the timestamp tolerance.
 * (Whether the delivery id was seen before is the caller's check: it needs storage.)
 *
 * @param headers - the request's headers, lower-case names (Node's `IncomingHttpHeaders`).
 * @param body - the raw body as received.
 * @param options.nowMs - the receiver's clock, epoch ms. @defaultValue `Date.now()`
 * @param options.toleranceS - seconds either way. @defaultValue {@link DEFAULT_SIGNATURE_TOLERANCE_S}
 * @returns `ok: false` with a reason a sender can act on; never throws.
 */
export function verifySignature(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  body: string,
  options: { nowMs?: number; toleranceS?: number } = {},
): SignatureCheck {
  const one = (name: string): string | undefined => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const signature = one(SIGNATURE_HEADER);
  const timestampText = one(TIMESTAMP_HEADER);
  const deliveryId = one(DELIVERY_HEADER);
  if (!signature) return { ok: false, reason: `no ${SIGNATURE_HEADER} header: sign the body (sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>) or send an API key` };
  if (!timestampText || !/^\d{1,12}$/.test(timestampText)) return { ok: false, reason: `${TIMESTAMP_HEADER} must be the signing time in Unix seconds` };
  if (!deliveryId || !/^[A-Za-z0-9._:-]{1,128}$/.test(deliveryId)) return { ok: false, reason: `${DELIVERY_HEADER} must be a delivery id (1-128 of A-Z a-z 0-9 . _ : -), the same across retries of one delivery` };
  const expected = Buffer.from(signPayload(secret, timestampText, body));
  const given = Buffer.from(signature.trim());
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: `${SIGNATURE_HEADER} does not match the body: sign "<timestamp>.<raw body>" with the trigger's secret` };
  const timestamp = Number(timestampText);
  const toleranceS = options.toleranceS ?? DEFAULT_SIGNATURE_TOLERANCE_S;
  const skewS = Math.abs((options.nowMs ?? Date.now()) / 1000 - timestamp);
  if (skewS > toleranceS) return { ok: false, reason: `${TIMESTAMP_HEADER} is ${Math.round(skewS)} s away from the server's clock; the tolerance is ${toleranceS} s (sign each attempt afresh, and keep clocks in sync)` };
  return { ok: true, timestamp, deliveryId, signature: signature.trim() };
}
