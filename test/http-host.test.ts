/**
 * The address the HTTP API listens on: loopback unless asked for more (`--host` / `FLEET_HTTP_HOST`),
 * and the address printed is the one actually bound.
 */
import { describe, expect, it } from 'vitest';
import { startHttpApi } from '@agentfleet/manager';
import { cliEnv, spawnCli } from './support/fleet.js';
import { cleanupPrefix, freePort, redisUrl, uniquePrefix } from './support/redis.js';

describe('HTTP API listen address', () => {
  it('binds 127.0.0.1 by default and every interface only when asked', async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('http-host');
    const byDefault = await startHttpApi({ redisUrl: url, prefix, port: 0, bullBoard: false });
    const wide = await startHttpApi({ redisUrl: url, prefix, port: 0, host: '0.0.0.0', bullBoard: false });
    try {
      const address = byDefault.app.server.address();
      expect(typeof address === 'object' && address?.address).toBe('127.0.0.1');
      expect(byDefault.listening).toBe(`127.0.0.1:${byDefault.port}`);
      const wideAddress = wide.app.server.address();
      expect(typeof wideAddress === 'object' && wideAddress?.address).toBe('0.0.0.0');
      expect(wide.listening).toBe(`0.0.0.0:${wide.port}`);
      expect(wide.url).toBe(`http://127.0.0.1:${wide.port}`);
    } finally {
      await byDefault.close();
      await wide.close();
      await cleanupPrefix(url, prefix);
    }
  });

  it('fleet manager prints the address it bound: loopback by default, FLEET_HTTP_HOST=0.0.0.0 says every interface', { timeout: 90_000 }, async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('http-host-cli');
    try {
      const port = await freePort();
      await using loopback = spawnCli(['manager', '--port', String(port)], cliEnv(url, prefix));
      await loopback.waitFor('HTTP API listening on', 60_000);
      expect(loopback.output()).toContain(`HTTP API listening on 127.0.0.1:${port}, http://127.0.0.1:${port}`);
      await loopback.stop();

      const widePort = await freePort();
      await using wide = spawnCli(['manager', '--port', String(widePort)], cliEnv(url, prefix, { FLEET_HTTP_HOST: '0.0.0.0' }));
      await wide.waitFor('HTTP API listening on', 60_000);
      expect(wide.output()).toContain(`HTTP API listening on 0.0.0.0:${widePort} (every interface), http://127.0.0.1:${widePort}`);
    } finally {
      await cleanupPrefix(url, prefix);
    }
  });
});
