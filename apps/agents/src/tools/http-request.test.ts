/**
 * `http_request`'s redirect guard: which addresses count as this machine or a private network, in
 * every spelling a redirect target may use. (An end-to-end redirect from an outside host needs a
 * second host, e.g. a network namespace; tests here reach only loopback.)
 */
import { describe, expect, it } from 'vitest';
import { isInternalAddress, resolvesInternal } from './http-request.js';

describe('isInternalAddress', () => {
  it('knows this machine and private networks in every spelling', () => {
    for (const a of ['0.0.0.0', '127.0.0.1', '::1', '::', '::ffff:127.0.0.1', '::ffff:7f00:1', '[::ffff:127.0.0.1]', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', 'fe80::1', 'fd00::2', '100.64.0.1']) {
      expect(isInternalAddress(a), a).toBe(true);
    }
    for (const a of ['8.8.8.8', '192.0.2.2', '2001:db8::1', '::ffff:8.8.8.8']) expect(isInternalAddress(a), a).toBe(false);
  });
});

describe('resolvesInternal', () => {
  it('finds the internal address of every spelling a redirect target may use, and none for an outside literal', async () => {
    for (const host of ['0.0.0.0', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]', '127.0.0.1', 'localhost', '[::1]', '169.254.169.254', '10.0.0.1']) {
      expect(await resolvesInternal(host), host).toBeDefined();
    }
    // IP literals are checked without DNS: an outside one resolves to nothing internal.
    for (const host of ['192.0.2.2', '[2001:db8::1]', '8.8.8.8']) expect(await resolvesInternal(host), host).toBeUndefined();
  });
});
