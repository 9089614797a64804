/**
 * Hostile and bad input through the real `fleet` CLI: broken workflows (cycles, self-dependency,
 * 10,000 phases, unknown fields, wrong types, deep nesting) and requirements (empty, larger than
 * 256 KiB, binary). Each is refused with exit status 2 and a message that names the path or the
 * limit, and nothing reaches Redis: not one key is written under the run's prefix.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli } from '../support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from '../support/redis.js';

let dir: string;
let prefix: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleet-hostile-'));
  prefix = uniquePrefix('hostile');
  env = cliEnv(redisUrl(), prefix);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await cleanupPrefix(redisUrl(), prefix);
});

async function keysUnderPrefix(): Promise<string[]> {
  const redis = new Redis(redisUrl());
  try {
    return await redis.keys(`${prefix.replace(/[{}]/g, (c) => `\\${c}`)}*`);
  } finally {
    redis.disconnect();
  }
}

const phase = (name: string, extra: Record<string, unknown> = {}) => ({ name, agent: 'planner', ...extra });
const base = (phases: unknown[], extra: Record<string, unknown> = {}) => ({ name: 'hostile', agents: ['planner'], phases, ...extra });

/** Write a workflow file, then check `validate` and `run` both refuse it with exit 2 and `expected` in the message. */
async function expectRefused(file: string, content: string, expected: RegExp): Promise<void> {
  const path = join(dir, file);
  await writeFile(path, content);
  const validate = await runCli(['workflows', 'validate', path], env, { timeoutMs: 20_000 });
  expect(validate.code, validate.stderr).toBe(2);
  expect(validate.stderr).toMatch(expected);
  const run = await runCli(['run', 'Build a todo API', '--workflow', path, '--no-local-workers'], env, { timeoutMs: 20_000, cwd: dir });
  expect(run.code, run.stderr).toBe(2);
  expect(run.stderr).toMatch(expected);
  expect(run.stderr).not.toMatch(/at .*\.js:\d+/); // a message, not a stack trace
}

describe('hostile workflows are refused before anything is enqueued', () => {
  it('a cycle names the phases on it', async () => {
    const wf = base([phase('a', { depends_on: ['c'] }), phase('b', { depends_on: ['a'] }), phase('c', { depends_on: ['b'] })]);
    await expectRefused('cycle.json', JSON.stringify(wf), /dependency cycle: (a|b|c) -> .* -> (a|b|c)/);
  });

  it('a self-dependency names the phase and its path', async () => {
    await expectRefused('self.yaml', 'name: selfish\nagents: [planner]\nphases:\n  - name: a\n    agent: planner\n    depends_on: [a]\n', /phases\[0\]\.depends_on\[0\]: phase "a" depends on itself/);
  });

  it('10,000 phases: refused with the 1000-phase limit in the message', async () => {
    const phases = Array.from({ length: 10_000 }, (_, i) => phase(`p${i}`, i > 0 ? { depends_on: [`p${i - 1}`] } : {}));
    await expectRefused('huge.json', JSON.stringify(base(phases)), /phases: at most 1000 phases/);
  });

  it('unknown fields and wrong types name their path', async () => {
    const wf = base([phase('a', { timeot: 30, retries: 'three' })], { colour: 'blue' });
    await expectRefused('typos.json', JSON.stringify(wf), /phases\[0\]\.timeot: unknown field "timeot" \(did you mean "timeout"\?\); remove it or check the spelling/);
    const text = (await runCli(['workflows', 'validate', join(dir, 'typos.json')], env)).stderr;
    expect(text).toMatch(/phases\[0\]\.retries: must be a number, got the string "three"/);
    expect(text).toMatch(/unknown field "colour"/);
  });

  it('deep nesting (100,000 levels) is refused with a clear message, not a crash', async () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    await expectRefused('deep.json', `{"name":"deep","agents":["planner"],"phases":[{"name":"a","agent":"planner","instructions":${deep}}]}`, /nested too deeply to parse/);
  });

  it('none of the above wrote anything to Redis', async () => {
    expect(await keysUnderPrefix()).toEqual([]);
  });
});

describe('bad requirements are refused with the limit in the message', () => {
  it('empty, larger than 256 KiB, or binary', async () => {
    const empty = await runCli(['run', '   ', '--no-local-workers'], env, { cwd: dir });
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/no requirements given|requirements are empty/);

    const bigPath = join(dir, 'big.md');
    await writeFile(bigPath, 'x'.repeat(256 * 1024 + 1));
    const big = await runCli(['run', '--file', bigPath, '--no-local-workers'], env, { cwd: dir });
    expect(big.code).toBe(2);
    expect(big.stderr).toContain('the limit is 262144 bytes (256 KiB)');

    const binPath = join(dir, 'blob.bin');
    await writeFile(binPath, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0x00, 0x00, 0x03, 0x00]));
    const bin = await runCli(['run', '--file', binPath, '--no-local-workers'], env, { cwd: dir });
    expect(bin.code).toBe(2);
    expect(bin.stderr).toMatch(/binary/);

    expect(await keysUnderPrefix()).toEqual([]);
  });
});
