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
