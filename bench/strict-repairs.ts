/**
 * Schema repairs per 100 phases with structured outputs honoured and ignored.
 *
 *   npm run bench:strict [-- --phases 100 --seed 7 --grammar-errors 0.15 --value-errors 0.05]
 *
 * Each phase is one coder turn through `runRole` and the real Anthropic SDK, against the local
 * Messages API server of the tests. A simulated model answers every call (first replies and
 * repairs alike, independently): with probability `--grammar-errors` its free answer breaks the
 * JSON Schema itself (a missing field, a wrong type, an extra property), with probability
 * `--value-errors` it breaks a rule only zod checks (an empty `language`, an absolute path). A
 * server that honours `strict` returns what constrained decoding would (grammar errors cannot
 * happen; value errors still can); a server that ignores it returns the free answer. The same seed
 * gives both modes the same sequence of answers.
 *
 * Writes a table to stdout and `bench/results/strict-repairs-<time>.json`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BUILTIN_ROLES, runRole, type AgentRole, type RoleInput } from '@agentfleet/agents';
import { AnthropicLlmClient, FleetError } from '@agentfleet/core';
import { startFakeAnthropic, type FakeReply } from '../test/support/fake-anthropic.js';

const { values } = parseArgs({
  options: {
    phases: { type: 'string', default: '100' },
    seed: { type: 'string', default: '7' },
    'grammar-errors': { type: 'string', default: '0.15' },
    'value-errors': { type: 'string', default: '0.05' },
    out: { type: 'string' },
  },
});
const phases = Number(values.phases);
const grammarRate = Number(values['grammar-errors']);
const valueRate = Number(values['value-errors']);
if (!Number.isInteger(phases) || phases < 1) throw new Error('--phases must be an integer >= 1');
if (!(grammarRate >= 0 && grammarRate <= 1) || !(valueRate >= 0 && valueRate <= 1)) throw new Error('--grammar-errors and --value-errors are probabilities in [0, 1]');

/** mulberry32: a small seeded generator, so both modes see the same answers. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const VALID = {
  files: [
    { path: 'src/server.js', language: 'javascript', content: 'import { createServer } from "node:http";\ncreateServer((q, s) => s.end("ok")).listen(3000);\n' },
    { path: 'README.md', language: 'markdown', content: '# Todo API\n' },
  ],
  notes: 'node src/server.js',
};

const GRAMMAR_BREAKS: Array<(v: typeof VALID) => unknown> = [
  ({ files }) => ({ files }), // `notes` missing
  (v) => ({ ...v, files: 'src/server.js' }), // wrong type
  (v) => ({ ...v, summary: 'extra' }), // a property the schema does not have
  (v) => ({ ...v, files: v.files.map(({ path, language }) => ({ path, language })) }), // `content` missing
];
const VALUE_BREAKS: Array<(v: typeof VALID) => typeof VALID> = [
  (v) => ({ ...v, files: v.files.map((f, i) => (i === 0 ? { ...f, language: '' } : f)) }),
  (v) => ({ ...v, files: v.files.map((f, i) => (i === 0 ? { ...f, path: '/etc/server.js' } : f)) }),
];

/** One simulated answer: the free one and the one constrained decoding would give. */
function answer(next: () => number): FakeReply {
  const pick = <T>(list: T[]): T => list[Math.floor(next() * list.length)] as T;
  const base = next() < valueRate ? pick(VALUE_BREAKS)(VALID) : VALID;
  const free = next() < grammarRate ? pick(GRAMMAR_BREAKS)(base) : base;
  return { toolInput: free, constrained: base };
}

interface ModeResult {
  mode: 'honour' | 'ignore';
  phases: number;
  calls: number;
  repairs: number;
  repairs_per_100_phases: number;
  failed_phases: number;
  output_tokens: number;
}

async function measure(mode: 'honour' | 'ignore'): Promise<ModeResult> {
  const next = rng(Number(values.seed));
  await using fake = await startFakeAnthropic({ strict: mode, responder: () => answer(next) });
  const llm = new AnthropicLlmClient({ apiKey: 'sk-ant-bench', baseURL: fake.url, model: 'claude-sonnet-5-5', maxRetries: 0 });
  const coder = BUILTIN_ROLES['coder'] as AgentRole;
  const input: RoleInput = { requirements: 'Build a todo API', variables: {}, phase: 'implementation', instructions: undefined, upstream: [], upstreamErrors: [] };
  let repairs = 0;
  let failed = 0;
  let outputTokens = 0;
  for (let i = 0; i < phases; i++) {
    try {
      const r = await runRole(coder, llm, input, { signal: AbortSignal.timeout(30_000), maxTokens: 8192, maxRepairs: 2 });
      repairs += r.repairs;
      outputTokens += r.usage.output_tokens;
    } catch (err) {
      if (!(err instanceof FleetError && err.code === 'OUTPUT_INVALID')) throw err;
      failed += 1;
      repairs += Number((err.details as { repairs?: number } | undefined)?.repairs ?? 0);
    }
  }
  const calls = fake.requests.length;
  return { mode, phases, calls, repairs, repairs_per_100_phases: (repairs / phases) * 100, failed_phases: failed, output_tokens: outputTokens };
}

const results = [await measure('honour'), await measure('ignore')];
const lines = [
  `Schema repairs, coder role, ${phases} phases per mode, seed ${values.seed}, grammar-level errors ${grammarRate}, value-only errors ${valueRate}, max 2 repairs`,
  '',
  '| server | model calls | repairs | repairs per 100 phases | phases failed (OUTPUT_INVALID) |',
  '| --- | --- | --- | --- | --- |',
  ...results.map((r) => `| strict ${r.mode === 'honour' ? 'honoured' : 'ignored'} | ${r.calls} | ${r.repairs} | ${r.repairs_per_100_phases.toFixed(1)} | ${r.failed_phases} |`),
  '',
];
process.stdout.write(lines.join('\n'));
const outDir = values.out ?? fileURLToPath(new URL('./results/', import.meta.url));
await mkdir(outDir, { recursive: true });
const file = join(outDir, `strict-repairs-${new Date().toISOString().replaceAll(':', '-').replace('.', '-')}.json`);
await writeFile(file, JSON.stringify({ bench: 'strict-repairs', node: process.version, options: { phases, seed: Number(values.seed), grammar_errors: grammarRate, value_errors: valueRate, max_repairs: 2 }, results }, null, 2) + '\n');
process.stdout.write(`results: ${file}\n`);
