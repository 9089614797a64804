/**
 * CLI commands against a frozen Redis: a private `redis-server` is SIGSTOPped, so it accepts TCP
 * connections (the kernel does) and never answers. `status`, `workers`, `run`, `manager` and
 * `agents` each say "Redis at … is not answering" and exit 2 on their own, instead of hanging.
 * (The bound below only catches a command that would hang; it is not a timing assertion.)
 */
import { describe, expect, it } from 'vitest';
import { cliEnv, runCli } from '../support/fleet.js';
import { startRedisServer } from '../support/redis.js';

const COMMANDS: string[][] = [
  ['status'],
  ['workers'],
  ['run', 'Build a tiny todo API'],
  ['manager'],
  ['agents', '--roles', 'planner'],
];

describe('a frozen Redis', () => {
  it('status, workers, run, manager and agents say Redis is not answering and exit 2', async () => {
    await using server = await startRedisServer();
    server.kill('SIGSTOP');
    try {
      const env = cliEnv(server.url, '{fleet-frozen}');
      const results = await Promise.all(COMMANDS.map((args) => runCli(args, env, { timeoutMs: 90_000 })));
      results.forEach((res, i) => {
        const name = COMMANDS[i]?.join(' ') ?? '';
        expect(res.code, `${name}: ${res.stderr}`).toBe(2);
        expect(res.stderr, name).toContain(`Redis at ${server.url} is not answering (no reply to PING within`);
        expect(res.stderr, name).not.toMatch(/\n\s+at /); // one line, no stack trace
      });
    } finally {
      server.kill('SIGCONT');
    }
  }, 120_000);
});
