/**
 * The live progress display of `fleet run` on a terminal: a spinner and the elapsed time of each
 * running phase, redrawn in place, above it the same lines as without a terminal; plain lines only
 * when stderr is not a terminal or with `--json`. The terminal is a real pseudo-terminal
 * (util-linux `script`), the run real (Redis, the manager and pools in the CLI, the real Anthropic
 * SDK against a local Messages API server whose reply the test holds until the display showed it).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planner, type RoleInput } from '@agentfleet/agents';
import { afterAll, describe, expect, it } from 'vitest';
import { startFakeAnthropic } from './support/fake-anthropic.js';
import { FLEET_BIN, cliEnv, runCli } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

const prefixes: string[] = [];
afterAll(async () => {
  for (const p of prefixes) await cleanupPrefix(redisUrl(), p);
});

const base: RoleInput = { requirements: 'Build a todo API', variables: {}, phase: 'plan', instructions: undefined, upstream: [], upstreamErrors: [] };
/** A spinner row of the status block: frame, phase, role, elapsed seconds. */
const SPINNER_ROW = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] plan \(planner\) running \d+\.\ds/;

/** One argument for `sh -c`, single-quoted. */
function shellQuote(arg: string): string {
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/**
 * Run `fleet <args>` in a pseudo-terminal (`script -q -e -c … /dev/null`): stdout and stderr are the
 * terminal; everything drawn on it is returned, escape sequences included.
 */
function fleetInTerminal(args: string[], env: NodeJS.ProcessEnv): { output: () => string; exited: Promise<number | null>; waitFor: (re: RegExp) => Promise<void> } {
  const command = [process.execPath, FLEET_BIN, ...args].map(shellQuote).join(' ');
  const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], { env: { ...env, TERM: 'xterm-256color', COLUMNS: '120', LINES: '40' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const waiters: Array<{ re: RegExp; resolve: () => void }> = [];
  const onData = (d: Buffer) => {
    output += d.toString();
    for (const w of waiters.splice(0)) {
      if (w.re.test(output)) w.resolve();
      else waiters.push(w);
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    output: () => output,
    exited,
    waitFor: (re) =>
      new Promise<void>((resolve, reject) => {
        if (re.test(output)) return resolve();
        waiters.push({ re, resolve });
        void exited.then((code) => reject(new Error(`fleet ${args.join(' ')} exited (${code}) before drawing ${re}:\n${output}`)));
      }),
  };
}

describe('fleet run on a terminal', () => {
  it('draws a spinner with the elapsed time of the running phase, then the lines and the summary; plain lines without a terminal and with --json', async () => {
    await using fake = await startFakeAnthropic({ apiKey: 'sk-ant-test-key' });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    fake.setResponder(async () => {
      await held;
      return { toolInput: planner.offline(base), usage: { input_tokens: 100, output_tokens: 50 } };
    });
    const dir = mkdtempSync(join(tmpdir(), 'fleet-tty-'));
    const file = join(dir, 'one.yaml');
    writeFileSync(file, 'name: one-phase\nagents: [planner]\nphases:\n  - name: plan\n    agent: planner\n    timeout: 120\n');
    const p = uniquePrefix('tty-progress');
    prefixes.push(p);
    const env = { ...cliEnv(redisUrl(), p, { ANTHROPIC_API_KEY: 'sk-ant-test-key' }), ANTHROPIC_BASE_URL: fake.url };

    const tty = fleetInTerminal(['run', 'Build a todo API', '--workflow', file, '--out', join(dir, 'a')], env);
    // The reply is held until the terminal shows the running phase with its spinner and time.
    await tty.waitFor(SPINNER_ROW);
    release();
    expect(await tty.exited).toBe(0);
    const drawn = tty.output();
    expect(drawn).toMatch(SPINNER_ROW);
    // The status block is redrawn in place: erase-line sequences (log-update).
    expect(drawn).toContain('\u001b[2K');
    // The lines of the plain display stay in the scrollback, and the summary follows.
    expect(drawn).toContain('▶ plan (planner) started');
    expect(drawn).toMatch(/✓ plan completed in \d+\.\ds/);
    expect(drawn).toMatch(/Run [0-9a-f-]{36} completed in/);

    // Not a terminal: the same lines, no spinner, no escape sequences on stderr.
    const plain = await runCli(['run', 'Build a todo API', '--workflow', file, '--out', join(dir, 'b')], env, { timeoutMs: 120_000 });
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stderr).toContain('▶ plan (planner) started');
    expect(plain.stderr).not.toMatch(SPINNER_ROW);
    expect(plain.stderr).not.toContain('\u001b[');

    // A terminal with --json: plain lines too (the JSON is for a program).
    const json = fleetInTerminal(['run', 'Build a todo API', '--workflow', file, '--out', join(dir, 'c'), '--json'], env);
    expect(await json.exited).toBe(0);
    expect(json.output()).toContain('▶ plan (planner) started');
    expect(json.output()).not.toMatch(SPINNER_ROW);
  }, 180_000);
});
