import { describe, expect, it } from 'vitest';
import { resolveHttpApiOptions } from './options.js';

describe('resolveHttpApiOptions host', () => {
  const base = { redisUrl: 'redis://127.0.0.1:6379', prefix: 'p' };

  it('listens on FLEET_HTTP_HOST when set, and on the host option over it', () => {
    expect(resolveHttpApiOptions(base, { FLEET_HTTP_HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    expect(resolveHttpApiOptions({ ...base, host: '::1' }, { FLEET_HTTP_HOST: '0.0.0.0' }).host).toBe('::1');
  });

  it('defaults to loopback only, never to every interface', () => {
    expect(resolveHttpApiOptions(base, {}).host).toBe('127.0.0.1');
  });
});

describe('resolveHttpApiOptions signature tolerance', () => {
  const base = { redisUrl: 'redis://127.0.0.1:6379', prefix: 'p' };

  it('is 300 s by default, FLEET_SIGNATURE_TOLERANCE_S when set, and the option over both', () => {
    expect(resolveHttpApiOptions(base, {}).signatureToleranceS).toBe(300);
    expect(resolveHttpApiOptions(base, { FLEET_SIGNATURE_TOLERANCE_S: '60' }).signatureToleranceS).toBe(60);
    expect(resolveHttpApiOptions({ ...base, signatureToleranceS: 30 }, { FLEET_SIGNATURE_TOLERANCE_S: '60' }).signatureToleranceS).toBe(30);
  });

  it('refuses a tolerance that is not whole seconds from 1 to 86400, naming the setting', () => {
    for (const bad of ['0', '-5', '1.5', 'five', '86401']) {
      expect(() => resolveHttpApiOptions(base, { FLEET_SIGNATURE_TOLERANCE_S: bad })).toThrow(/FLEET_SIGNATURE_TOLERANCE_S/);
    }
  });
});
