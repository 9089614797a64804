/**
 * Redis in production shapes (issue 6), each on a private `redis-server`: an ACL user in the URL,
 * a wrong password (refused at start, the password in no message), `maxmemory-policy` other than
 * `noeviction` (the manager warns), and TLS (`rediss://`, the CA given through NODE_EXTRA_CA_CERTS).
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli, spawnCli } from '../support/fleet.js';
import { freePort, startRedisServer } from '../support/redis.js';

const PREFIX = '{fleet-shapes}';
const PASSWORD = 'pw-7c1e5d0a9b-secret';
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleet-shapes-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `fleet run --json` on the offline model; returns the parsed result. */
async function runOnce(env: NodeJS.ProcessEnv): Promise<{ status: string; completed_phases: string[] }> {
  const out = join(dir, `out-${Math.random().toString(16).slice(2)}`);
  const run = await runCli(['run', 'A URL shortener', '--json', '--out', out], env, { timeoutMs: 25_000, cwd: dir });
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as { status: string; completed_phases: string[] };
}

describe('Redis with AUTH and ACL users', () => {
  it('an ACL user in REDIS_URL works; a wrong password fails at start without printing it', async () => {
    await using server = await startRedisServer({ args: ['--user', 'fleet', 'on', `>${PASSWORD}`, '~*', '&*', '+@all'] });
    // Only the ACL user may connect from now on.
    const admin = new Redis(server.url);
    await admin.call('ACL', 'SETUSER', 'default', 'off');
    admin.disconnect();

    const good = `redis://fleet:${PASSWORD}@127.0.0.1:${server.port}`;
    const result = await runOnce(cliEnv(good, PREFIX));
    expect(result.status).toBe('completed');

    const bad = cliEnv(`redis://fleet:wrong-${PASSWORD}@127.0.0.1:${server.port}`, PREFIX);
    const attempts = await Promise.all([['manager'], ['agents', '--roles', 'planner'], ['run', 'A URL shortener', '--no-local-workers']].map((args) => runCli(args, bad, { timeoutMs: 15_000, cwd: dir })));
    for (const r of attempts) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/refused the credentials \(WRONGPASS/);
      expect(r.stderr).toContain(`redis://fleet:***@127.0.0.1:${server.port}`);
      expect(r.stderr + r.stdout).not.toContain(PASSWORD);
    }
  });
});

describe('Redis that may evict keys', () => {
  it('the manager warns when maxmemory-policy is not noeviction', async () => {
    await using server = await startRedisServer({ args: ['--maxmemory-policy', 'allkeys-lru'] });
    const manager = spawnCli(['manager'], cliEnv(server.url, PREFIX));
    try {
      await manager.waitFor('warning: Redis maxmemory-policy is "allkeys-lru"');
      expect(manager.output()).toContain('noeviction');
    } finally {
      await manager.stop('SIGKILL');
    }
  });
});

describe('Redis over TLS', () => {
  it('rediss:// with a private CA runs a workflow end to end', async () => {
    const file = (name: string) => join(dir, name);
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=agentfleet-test-ca', '-keyout', file('ca.key'), '-out', file('ca.crt'));
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', file('server.key'), '-out', file('server.csr'));
    await writeFile(file('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '1', '-out', file('server.crt'), '-extfile', file('san.ext'));

    const tlsPort = await freePort();
    await using server = await startRedisServer({
      args: ['--tls-port', String(tlsPort), '--tls-cert-file', file('server.crt'), '--tls-key-file', file('server.key'), '--tls-ca-cert-file', file('ca.crt'), '--tls-auth-clients', 'no'],
    });
    void server;
    const env = { ...cliEnv(`rediss://127.0.0.1:${tlsPort}`, PREFIX), NODE_EXTRA_CA_CERTS: file('ca.crt') };
    const result = await runOnce(env);
    expect(result.status).toBe('completed');
    expect(result.completed_phases).toEqual(['planning', 'design', 'implementation', 'review']);

    // Without the CA the certificate is refused: TLS really is in use and verified.
    const untrusted = await runCli(['status'], cliEnv(`rediss://127.0.0.1:${tlsPort}`, PREFIX), { timeoutMs: 15_000 });
    expect(untrusted.code).toBe(2);
    expect(untrusted.stderr).toMatch(/unreachable/);
  });
});
