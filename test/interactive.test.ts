/**
 * `fleet run --interactive`: the planner's clarifying question is asked on the terminal, the answer
 * typed on stdin goes back to the run as an `answers` event, and planning runs again with it.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunResult } from '@agentfleet/core';
import { afterAll, describe, expect, it } from 'vitest';
import { FLEET_BIN, cliEnv } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

const prefix = uniquePrefix('interactive');
afterAll(async () => cleanupPrefix(redisUrl(), prefix));

describe('fleet run --interactive', () => {
  it("asks the planner's open question in the terminal and feeds the answer back", async () => {
    const out = mkdtempSync(join(tmpdir(), 'fleet-interactive-'));
    const child = spawn(process.execPath, [FLEET_BIN, 'run', 'A todo API', '--interactive', '--json', '--out', out], {
      env: cliEnv(redisUrl(), prefix),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('? Who are the users, and how do they sign in?') && !child.stdin.writableEnded) {
        child.stdin.end('Staff members, with single sign-on\n');
      }
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`fleet run --interactive did not finish:\n${stderr}`));
      }, 110_000);
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(code, stderr).toBe(0);
    expect(stderr).toContain('⏸ planning waiting for "answers"');
    const result = JSON.parse(stdout) as RunResult;
    expect(result.status).toBe('completed');
    expect(result.phases[0]).toMatchObject({ name: 'planning', iterations: 2, status: 'completed' });
    expect(result.results.planning).toMatchObject({ open_questions: [] });
    // A whole `fleet run` (manager, pools, a private Redis if none) starts in this test: seconds on a loaded machine.
  }, 120_000);
});
