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
  lang: string;
  body: string;
  /** 1-based line of the opening fence in its file. */
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

const root = fileURLToPath(new URL('..', import.meta.url));
/** README.md, then every docs/*.md in name order. */
const PAGES = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const prefix = uniquePrefix('readme');
const env = cliEnv(redisUrl(), prefix);
afterAll(async () => {
  await cleanupPrefix(redisUrl(), prefix);
});

/** Run a shell example in `dir`, with `fleet` and `npx fleet` meaning this checkout's CLI. */
function runShell(script: string, dir: string): Promise<{ code: number | null; output: string }> {
  const prelude = [
    'set -euo pipefail',
    `fleet() { ${JSON.stringify(process.execPath)} ${JSON.stringify(FLEET_BIN)} "$@"; }`,
    'npx() { if [ "$1" = fleet ]; then shift; fleet "$@"; else echo "documentation tests run only npx fleet, not npx $1" >&2; return 127; fi; }',
  ].join('\n');
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', `${prelude}\n${script}`], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('exit', (code) => resolve({ code, output }));
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
  describe(`${page} examples marked <!-- test -->`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-docs-'));
    for (const e of examples) {
      const where = `${page}:${e.line}`;
      it(`${where} (${e.lang}) works as written`, async () => {
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
