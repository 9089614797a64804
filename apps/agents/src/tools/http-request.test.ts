/**
 * `http_request`'s redirect guard against a real redirecting server: with every host allowed, a
 * host that is not this machine's loopback redirects to `0.0.0.0`, `[::ffff:127.0.0.1]` and
 * `127.0.0.1` where a loopback-only service holds a secret; each hop is refused.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { FleetError } from '@agentfleet/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpRequestTool, isInternalAddress } from './http-request.js';
import { parameterValidator, type ToolContext } from './tool.js';
import { loadToolSettings } from './settings.js';

/** An address of this machine that is not loopback (the redirecting "remote" host). */
const outside = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

let secret: Server;
let redirector: Server;
let secretPort = 0;
let redirectTo = '';

function listen(server: Server, host: string): Promise<number> {
  return new Promise((resolve) => server.listen(0, host, () => resolve((server.address() as AddressInfo).port)));
}

beforeAll(async () => {
  secret = createServer((_req, res) => res.end('loopback-secret-42'));
  secretPort = await listen(secret, '127.0.0.1');
  redirector = createServer((_req, res) => res.writeHead(302, { location: redirectTo }).end());
});
afterAll(async () => {
  await new Promise((r) => secret.close(r));
  await new Promise((r) => redirector.close(r));
});

describe('isInternalAddress', () => {
  it('knows this machine and private networks in every spelling', () => {
    for (const a of ['0.0.0.0', '127.0.0.1', '::1', '::', '::ffff:127.0.0.1', '::ffff:7f00:1', '[::ffff:127.0.0.1]', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', 'fe80::1', 'fd00::2', '100.64.0.1']) {
      expect(isInternalAddress(a), a).toBe(true);
    }
    for (const a of ['8.8.8.8', '192.0.2.2', '2001:db8::1', '::ffff:8.8.8.8']) expect(isInternalAddress(a), a).toBe(false);
  });
});

describe('http_request redirects', () => {
  it('refuse a redirect from another host into 0.0.0.0, [::ffff:127.0.0.1] or 127.0.0.1', async () => {
    if (!outside) throw new Error('this test needs a non-loopback IPv4 address on this machine (the redirecting host)');
    const port = await listen(redirector, outside);
    const settings = { ...loadToolSettings({ FLEET_TOOL_ALLOWED_HOSTS: '*' }) };
    const ctx: ToolContext = { signal: AbortSignal.timeout(10_000), artifactsDir: '/tmp', runId: 'r', phase: 'p', settings };
    const validate = parameterValidator(httpRequestTool);
    for (const target of [`http://0.0.0.0:${secretPort}/`, `http://[::ffff:127.0.0.1]:${secretPort}/`, `http://127.0.0.1:${secretPort}/`]) {
      redirectTo = target;
      const outcome = await Promise.resolve(httpRequestTool.handler(validate({ url: `http://${outside}:${port}/go` }) as never, ctx)).then(
        (v) => v,
        (e: unknown) => e,
      );
      expect(outcome, target).toBeInstanceOf(FleetError);
      expect((outcome as FleetError).code).toBe('TOOL_NOT_ALLOWED');
      expect(JSON.stringify(outcome)).not.toContain('loopback-secret-42');
    }
  });
});
