/**
 * The documentation's examples are tests: in README.md and in every page under docs/, each fenced
 * `sh`, `bash`, `yaml` or `json` block that follows a `<!-- test -->` line is run, file by file and
 * in order within a file, in one scratch directory per file, against real Redis with the offline
 * model, so an example that stops working fails here. Every relative link of those pages must
 * point at a file that exists (and a heading, for a `#fragment`).
 *
 * - `yaml` blocks whose first line is `# file: NAME` are written to NAME there (later blocks use
 *   them) and must pass `fleet workflows validate`;
 * - `sh`/`bash` blocks run in bash with `set -euo pipefail`: `fleet` and `npx fleet` are the CLI
 *   of this checkout; every command must exit 0;
 * - `json` blocks must parse as JSON.
 *
 * Two more markers keep sample text true:
 * - `<!-- same as PATH -->`: the block is the repository file PATH, byte for byte;
 * - `<!-- stdout of: COMMAND -->` / `<!-- stderr of: COMMAND -->` (optionally ending in
 *   `(exit N)`, else 0): COMMAND runs there like a `sh` example, and the block must be what it
 *   printed on that stream, up to what changes from run to run: run ids (`3f0c…` in a sample),
 *   durations (`4.2s`), token counts and cost, the directory before `runs/`, and runs of spaces. A
 *   sample line `…` stands for any number of lines;
 * - `<!-- keys of: COMMAND -->`: COMMAND prints JSON on stdout; every `"key":` of the (abridged,
 *   commented) sample is a key of that JSON, and every top-level key of the JSON is in the sample.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { FLEET_BIN, cliEnv, runCli } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

interface Example {
  /** What the marker asks: run the block, compare it with a file, or compare it with a command's output. */
  kind: 'test' | 'same' | 'output' | 'keys';
  lang: string;
  body: string;
  /** 1-based line of the opening fence in its file. */
  line: number;
  /** `same`: the repository file; `output`, `keys`: the command. */
  target?: string;
  /** `output`: the stream compared and the exit status expected. */
  stream?: 'stdout' | 'stderr';
  exit?: number;
}

/** The fenced blocks of `markdown` that follow a marker, in order (other HTML comments are not markers). */
function markedExamples(markdown: string): Example[] {
  const out: Example[] = [];
  const re = /<!-- (.+?) -->\n```(\w*)\n([\s\S]*?)```/g;
  for (let m = re.exec(markdown); m; m = re.exec(markdown)) {
    const marker = m[1] as string;
    const common = { lang: m[2] as string, body: m[3] as string, line: markdown.slice(0, m.index).split('\n').length + 1 };
    const same = /^same as (\S+)$/.exec(marker);
    const output = /^(stdout|stderr) of: (.+?)(?: \(exit (\d+)\))?$/.exec(marker);
    const keys = /^keys of: (.+)$/.exec(marker);
    if (marker === 'test') out.push({ kind: 'test', ...common });
    else if (same) out.push({ kind: 'same', target: same[1], ...common });
    else if (output) out.push({ kind: 'output', target: output[2], stream: output[1] as 'stdout' | 'stderr', exit: Number(output[3] ?? 0), ...common });
    else if (keys) out.push({ kind: 'keys', target: keys[1], ...common });
  }
  return out;
}

/** Every object key anywhere in a JSON value. */
function keysIn(value: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const v of value) keysIn(v, into);
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      into.add(k);
      keysIn(v, into);
    }
  }
  return into;
}

/** A line of output with what changes between runs replaced by placeholders. */
function normalizeLine(line: string): string {
  const text = line
    .trimEnd()
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<id>')
    .replace(/\b[0-9a-f]{4}…/g, '<id>')
    .replace(/\S*\/runs\//g, '<dir>/runs/')
    .replace(/\b\d+(\.\d+)?s\b/g, '<s>')
    .replace(/\b\d+ (in|out)\b/g, '<n> $1')
    .replace(/\$\d+\.\d+/g, '$<usd>');
  const indent = /^ */.exec(text)?.[0] ?? '';
  return indent + text.slice(indent.length).replace(/ {2,}/g, ' ');
}

/** Whether `sample` (its lines normalized, `…` lines matching any run of lines) is `actual`. */
function matchesSample(sample: string[], actual: string[]): boolean {
  if (sample.length === 0) return actual.length === 0;
  const [head, ...rest] = sample as [string, ...string[]];
  if (head.trim() === '…') return actual.some((_, i) => matchesSample(rest, actual.slice(i))) || matchesSample(rest, []);
  return actual.length > 0 && normalizeLine(head) === normalizeLine(actual[0] as string) && matchesSample(rest, actual.slice(1));
}

/** Lines of a text without its leading and trailing empty lines. */
function linesOf(text: string): string[] {
  return text.replace(/^\n+/, '').replace(/\s+$/, '').split('\n');
}

const root = fileURLToPath(new URL('..', import.meta.url));
/** README.md, then every docs/*.md in name order. */
const PAGES = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const prefix = uniquePrefix('readme');
const env = cliEnv(redisUrl(), prefix);
afterAll(async () => {
  await cleanupPrefix(redisUrl(), prefix);
});
/** The bound of an example that runs `fleet` (a whole run, manager and pools included). */
const RUNS_FLEET = { timeout: 120_000 };

/** Run a shell example in `dir`, with `fleet` and `npx fleet` meaning this checkout's CLI. */
function runShell(script: string, dir: string): Promise<{ code: number | null; output: string; stdout: string; stderr: string }> {
  const prelude = [
    'set -euo pipefail',
    `fleet() { ${JSON.stringify(process.execPath)} ${JSON.stringify(FLEET_BIN)} "$@"; }`,
    'npx() { if [ "$1" = fleet ]; then shift; fleet "$@"; else echo "documentation tests run only npx fleet, not npx $1" >&2; return 127; fi; }',
  ].join('\n');
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', `${prelude}\n${script}`], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
      stderr += d.toString();
    });
    child.on('exit', (code) => resolve({ code, output, stdout, stderr }));
  });
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens. */
function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** The anchors of a Markdown file's headings (outside code fences). */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const m = !fenced && /^#{1,6} (.+)$/.exec(line);
    if (m) anchors.add(anchorOf(m[1] as string));
  }
  return anchors;
}

describe('documentation pages', () => {
  it('README.md and docs/ hold the marked examples', () => {
    const all = PAGES.flatMap((page) => markedExamples(readFileSync(join(root, page), 'utf8')));
    expect(all.length).toBeGreaterThanOrEqual(5);
  });

  it('every relative link points at a file (and heading) that exists', () => {
    const broken: string[] = [];
    for (const page of PAGES) {
      const markdown = readFileSync(join(root, page), 'utf8');
      for (const m of markdown.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1] as string;
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
        const [path = '', fragment] = target.split('#', 2);
        const file = path === '' ? join(root, page) : join(root, dirname(page), path);
        if (!existsSync(file)) {
          broken.push(`${page}: ${target} (no ${relative(root, file)})`);
        } else if (fragment && file.endsWith('.md') && !anchorsOf(readFileSync(file, 'utf8')).has(fragment)) {
          broken.push(`${page}: ${target} (no heading #${fragment} in ${relative(root, file)})`);
        }
      }
    }
    expect(broken).toEqual([]);
  });
});

for (const page of PAGES) {
  const examples = markedExamples(readFileSync(join(root, page), 'utf8'));
  if (examples.length === 0) continue;
  // Sequential within a page: later examples use the files earlier ones wrote, in the page's own directory.
  describe(`${page} marked examples`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-docs-'));
    for (const e of examples) {
      const where = `${page}:${e.line}`;
      if (e.kind === 'same') {
        it(`${where} is ${e.target!} as it is`, () => {
          expect(e.body, `${where}: copy ${e.target!} into the block`).toBe(readFileSync(join(root, e.target!), 'utf8'));
        });
        continue;
      }
      if (e.kind === 'output') {
        it(`${where} is what \`${e.target!}\` prints on ${e.stream!}`, RUNS_FLEET, async () => {
          const res = await runShell(e.target!, dir);
          expect(res.code, `${where}:\n${res.output}`).toBe(e.exit);
          const printed = linesOf(e.stream === 'stdout' ? res.stdout : res.stderr);
          const sample = linesOf(e.body);
          expect(matchesSample(sample, printed), `${where}: the sample\n${sample.join('\n')}\nis not what it printed:\n${printed.join('\n')}`).toBe(true);
        });
        continue;
      }
      if (e.kind === 'keys') {
        it(`${where} has the keys of what \`${e.target!}\` prints`, RUNS_FLEET, async () => {
          const res = await runShell(e.target!, dir);
          expect(res.code, `${where}:\n${res.output}`).toBe(0);
          const printed = JSON.parse(res.stdout) as Record<string, unknown>;
          const sampleKeys = new Set([...e.body.replace(/\/\/.*$/gm, '').matchAll(/"(\w+)":/g)].map((m) => m[1] as string));
          const known = keysIn(printed);
          expect([...sampleKeys].filter((k) => !known.has(k)), `${where}: keys of the sample that the output does not have`).toEqual([]);
          expect(Object.keys(printed).filter((k) => !sampleKeys.has(k)), `${where}: keys of the output missing from the sample`).toEqual([]);
        });
        continue;
      }
      it(`${where} (${e.lang}) works as written`, RUNS_FLEET, async () => {
        expect(['sh', 'bash', 'yaml', 'json'], where).toContain(e.lang);
        if (e.lang === 'json') {
          expect(() => JSON.parse(e.body) as unknown, where).not.toThrow();
          return;
        }
        if (e.lang === 'yaml') {
          const file = /^# file: (\S+)/.exec(e.body)?.[1];
          expect(file, `${where}: a runnable yaml example starts with "# file: NAME.yaml"`).toBeDefined();
          writeFileSync(join(dir, file!), e.body);
          const res = await runCli(['workflows', 'validate', file!], env, { cwd: dir });
          expect(res.code, `${where}: ${res.stderr}`).toBe(0);
          return;
        }
        const res = await runShell(e.body, dir);
        expect(res.code, `${where}:\n${res.output}`).toBe(0);
      });
    }
  });
}
