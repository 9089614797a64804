/** The signature scheme on its own: what passes, and why each kind of bad request is refused. */
import { describe, expect, it } from 'vitest';
import { DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signPayload, signedHeaders, verifySignature, type SignatureCheck } from './signature.js';

const SECRET = 'whsec-unit-0123456789';
const BODY = '{"run_id":"r1","status":"completed"}';
const NOW = 1_780_000_000_000;

/** The reason of a refused check ('' when it passed). */
function reasonOf(check: SignatureCheck): string {
  return check.ok ? '' : check.reason;
}

describe('signPayload and verifySignature', () => {
  it('signs "<timestamp>.<body>" with HMAC-SHA256 in the documented header format', () => {
    // Reference value computed with: printf '%s' '1780000000.{"run_id":"r1","status":"completed"}' | openssl dgst -sha256 -hmac whsec-unit-0123456789
    expect(signPayload(SECRET, '1780000000', BODY)).toBe('sha256=6db4f20002b34e06f9f27e5d6046f8cfb20f3ad5432ea44c4bdef76d13fb0699');
    const headers = signedHeaders(SECRET, BODY, 'd-1', NOW);
    expect(headers).toEqual({ [TIMESTAMP_HEADER]: '1780000000', [DELIVERY_HEADER]: 'd-1', [SIGNATURE_HEADER]: signPayload(SECRET, '1780000000', BODY) });
    expect(verifySignature(SECRET, headers, BODY, { nowMs: NOW })).toEqual({ ok: true, timestamp: 1_780_000_000, deliveryId: 'd-1', signature: headers[SIGNATURE_HEADER] });
  });

  it('refuses another secret, a changed body, a missing delivery id and a timestamp past the tolerance either way', () => {
    const headers = signedHeaders(SECRET, BODY, 'd-1', NOW);
    expect(reasonOf(verifySignature('another-secret-0123456789', headers, BODY, { nowMs: NOW }))).toContain('does not match');
    expect(verifySignature(SECRET, headers, BODY.replace('completed', 'failed'), { nowMs: NOW })).toMatchObject({ ok: false });
    expect(reasonOf(verifySignature(SECRET, { ...headers, [DELIVERY_HEADER]: undefined }, BODY, { nowMs: NOW }))).toContain(DELIVERY_HEADER);
    expect(reasonOf(verifySignature(SECRET, { ...headers, [SIGNATURE_HEADER]: undefined }, BODY, { nowMs: NOW }))).toContain('API key');
    expect(verifySignature(SECRET, headers, BODY, { nowMs: NOW + 300_000, toleranceS: 300 }).ok).toBe(true);
    expect(reasonOf(verifySignature(SECRET, headers, BODY, { nowMs: NOW + 301_000, toleranceS: 300 }))).toContain('301 s away');
    expect(verifySignature(SECRET, headers, BODY, { nowMs: NOW - 301_000, toleranceS: 300 }).ok).toBe(false);
    // An 86 s old delivery passes the default tolerance but not a tighter one.
    expect(verifySignature(SECRET, headers, BODY, { nowMs: NOW + 86_000 }).ok).toBe(true);
    expect(verifySignature(SECRET, headers, BODY, { nowMs: NOW + 86_000, toleranceS: 60 }).ok).toBe(false);
  });
});
