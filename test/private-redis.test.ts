/**
 * `fleet run` with nothing listening on REDIS_URL: it starts a private redis-server from PATH and
 * stops it at exit; without redis-server on PATH it exits 2 and says how to get Redis.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliEnv, runCli } from './support/fleet.js';
import { freePort } from './support/redis.js';

function redisServers(): string[] {
  try {
    return execFileSync('pgrep', ['-a', 'redis-server'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

describe('fleet run without a Redis at REDIS_URL', () => {
  it('completes on a private redis-server and leaves no process behind', async () => {
    const deadUrl = `redis://127.0.0.1:${await freePort()}`;
    const out = mkdtempSync(join(tmpdir(), 'fleet-private-'));
    const res = await runCli(['run', 'A todo API', '--json', '--out', out], cliEnv(deadUrl, '{fleet}'));
    expect(res.code, res.stderr).toBe(0);
    const port = /started a private redis-server on redis:\/\/127\.0\.0\.1:(\d+)/.exec(res.stderr)?.[1];
    expect(port, res.stderr).toBeDefined();
    expect(JSON.parse(res.stdout)).toMatchObject({ status: 'completed' });
    expect(redisServers().filter((line) => line.includes(`:${port}`))).toEqual([]);
  });

  it('exits 2 with how to get Redis when redis-server is not on PATH either', async () => {
    const deadUrl = `redis://:s3cret-password@127.0.0.1:${await freePort()}`;
    // A PATH holding node and nothing else (node and redis-server often share /usr/bin).
    const bin = mkdtempSync(join(tmpdir(), 'fleet-path-'));
    symlinkSync(process.execPath, join(bin, 'node'));
    const env = cliEnv(deadUrl, '{fleet}', { PATH: bin });
    const res = await runCli(['run', 'A todo API'], env);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('redis-server is not on PATH');
    expect(res.stderr).toContain('docker compose up -d redis');
    expect(res.stderr).not.toContain('s3cret-password');
  });
});
