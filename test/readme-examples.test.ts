/**
 * The README's examples are tests: every fenced `sh`, `bash`, `yaml` or `json` block that follows a
 * `<!-- test -->` line is run, in order, in one scratch directory, against real Redis with the
 * offline model, so an example that stops working fails here.
 *
 * - `yaml` blocks whose first line is `# file: NAME` are written to NAME there (later blocks use
 *   them) and must pass `fleet workflows validate`;
 * - `sh`/`bash` blocks run in bash with `set -euo pipefail`: `fleet` and `npx fleet` are the CLI
 *   of this checkout; every command must exit 0;
 * - `json` blocks must parse as JSON.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FLEET_BIN, cliEnv, runCli } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

interface Example {
  lang: string;
  body: string;
  /** 1-based line of the opening fence in README.md. */
  line: number;
}

/** The fenced blocks of `markdown` marked `<!-- test -->`, in order. */
function markedExamples(markdown: string): Example[] {
  const out: Example[] = [];
  const re = /<!-- test -->\n```(\w+)\n([\s\S]*?)```/g;
  for (let m = re.exec(markdown); m; m = re.exec(markdown)) {
    out.push({ lang: m[1] as string, body: m[2] as string, line: markdown.slice(0, m.index).split('\n').length + 1 });
  }
  return out;
}

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const examples = markedExamples(README);
const prefix = uniquePrefix('readme');
const env = cliEnv(redisUrl(), prefix);
const dir = mkdtempSync(join(tmpdir(), 'fleet-readme-'));
afterAll(async () => {
  await cleanupPrefix(redisUrl(), prefix);
});

/** Run a shell example in `dir`, with `fleet` and `npx fleet` meaning this checkout's CLI. */
function runShell(script: string): Promise<{ code: number | null; output: string }> {
  const prelude = [
    'set -euo pipefail',
    `fleet() { ${JSON.stringify(process.execPath)} ${JSON.stringify(FLEET_BIN)} "$@"; }`,
    'npx() { if [ "$1" = fleet ]; then shift; fleet "$@"; else echo "README tests run only npx fleet, not npx $1" >&2; return 127; fi; }',
  ].join('\n');
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', `${prelude}\n${script}`], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describe('README examples marked <!-- test -->', () => {
  it('finds the marked examples', () => {
    expect(examples.length).toBeGreaterThanOrEqual(5);
    for (const e of examples) expect(['sh', 'bash', 'yaml', 'json'], `README.md:${e.line}`).toContain(e.lang);
  });

  // Sequential: later examples use the files earlier ones wrote.
  for (const e of examples) {
    it(`README.md:${e.line} (${e.lang}) works as written`, async () => {
      if (e.lang === 'json') {
        expect(() => JSON.parse(e.body) as unknown, `README.md:${e.line}`).not.toThrow();
        return;
      }
      if (e.lang === 'yaml') {
        const file = /^# file: (\S+)/.exec(e.body)?.[1];
        expect(file, `README.md:${e.line}: a runnable yaml example starts with "# file: NAME.yaml"`).toBeDefined();
        writeFileSync(join(dir, file!), e.body);
        const res = await runCli(['workflows', 'validate', file!], env, { cwd: dir });
        expect(res.code, `README.md:${e.line}: ${res.stderr}`).toBe(0);
        return;
      }
      const res = await runShell(e.body);
      expect(res.code, `README.md:${e.line}:\n${res.output}`).toBe(0);
    });
  }
});
