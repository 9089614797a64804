/**
 * Tokens and cost per run of `software-delivery`, with and without tool use for the coder and the
 * reviewer, through the real Anthropic SDK against the local Messages API server
 * (`test/support/fake-anthropic.ts`), which bills 4 characters of the request (system, messages,
 * tools) an input token and 4 characters of the reply an output token, and counts them.
 *
 *   npx tsx bench/tool-use/main.ts [--files N] [--file-bytes B] [--model M] [--out DIR]
 *
 * Every variant runs the same scripted agents on the same project (N source files of about B bytes;
 * default 12 × 3000), with one review round trip: the reviewer asks for a change to one file, the
 * coder changes it and returns every file, the reviewer approves.
 *
 * - without tools (`input_files: inline` on implementation and review): the reviewer gets every file
 *   in its prompt, and the coder gets its previous files;
 * - with tools (`input_files: reference`): files reach the prompts by reference, with `list_files`
 *   and `read_file`; the reviewer lists the files and reads the one its finding is about, the coder
 *   reads the file the finding names before it answers;
 * - default: the built-in workflow as shipped (`input_files: auto`): by reference when the files are
 *   larger than `FLEET_INPUT_FILES_INLINE_MAX_BYTES` (49152 by default), else inline.
 *
 * Needs Redis at REDIS_URL (default redis://127.0.0.1:6379). Writes `bench/results/agent-tools-<date>.json`
 * and prints a markdown table. A benchmark, never a test: the numbers depend on the scripted behaviour.
 */
import { BUILTIN_ROLES, designer, loadToolSettings, planner, startAgentPool, type RoleInput } from '@agentfleet/agents';
import { AnthropicLlmClient, FleetClient, MODEL_PRICES, costUsd, createRedis, loadBuiltinWorkflow, type WorkflowDefinition } from '@agentfleet/core';
import { startManager } from '@agentfleet/manager';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startFakeAnthropic, type FakeReply, type FakeRequest } from '../../test/support/fake-anthropic.js';

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: '12' },
    'file-bytes': { type: 'string', default: '3000' },
    model: { type: 'string', default: 'claude-sonnet-5-5' },
    out: { type: 'string', default: 'bench/results' },
  },
});
const FILES = Number(values.files);
const FILE_BYTES = Number(values['file-bytes']);
const MODEL = values.model;
const REQUIREMENTS = 'Build a REST API for a todo list with user accounts and due-date reminders';

type Block = Record<string, unknown>;
interface Code {
  files: Array<{ path: string; language: string; content: string }>;
  notes: string;
}

/** A project of FILES files of about FILE_BYTES bytes each; `fixed` marks the second version of file 3. */
function project(fixed: boolean): Code {
  const files = Array.from({ length: FILES }, (_, i) => {
    const line = `export function handler${i}(req, res) { res.end(JSON.stringify({ file: ${i}, ok: true })); }\n`;
    let content = `// src/module${i}.js\n`;
    while (content.length < FILE_BYTES) content += line;
    if (fixed && i === 3) content += '// validates the due date before it is stored\n';
    return { path: `src/module${i}.js`, language: 'javascript', content };
  });
  return { files, notes: fixed ? 'Fixed the finding: src/module3.js validates the due date.' : 'First version.' };
}

const base: RoleInput = { requirements: REQUIREMENTS, variables: {}, phase: 'planning', instructions: undefined, upstream: [], upstreamErrors: [] };
const plan = planner.offline(base);
const design = designer.offline({ ...base, upstream: [{ phase: 'planning', role: 'planner', output: plan }] });

/** The scripted agents: what a model would answer to each request. */
function respond(req: FakeRequest): FakeReply {
  const body = req.body ?? {};
  const tools = (body['tools'] as Array<{ name: string }>).map((t) => t.name);
  const role = (tools[0] ?? '').replace(/^submit_/, '').replace(/_output$/, '');
  const messages = body['messages'] as Array<{ role: string; content: string | Block[] }>;
  const firstText = JSON.stringify(messages[0]?.content ?? '');
  const withTools = tools.length > 1;
  const toolRounds = messages.filter((m) => m.role === 'assistant').length;
  switch (role) {
    case 'planner':
      return { toolInput: plan };
    case 'designer':
      return { toolInput: design };
    case 'coder': {
      const again = firstText.includes('sent this work back');
      if (!again) return { toolInput: project(false) };
      if (withTools && toolRounds === 0) return { toolCalls: [{ name: 'read_file', input: { path: 'files/src/module3.js' } }] };
      return { toolInput: project(true) };
    }
    case 'reviewer': {
      const second = firstText.includes('Fixed the finding');
      if (withTools && toolRounds === 0) return { toolCalls: [{ name: 'list_files', input: {} }] };
      if (withTools && toolRounds === 1) return { toolCalls: [{ name: 'read_file', input: { path: 'files/src/module3.js' } }] };
      return second
        ? { toolInput: { verdict: 'approve', findings: [], summary: 'Every criterion holds; the due date is validated.' } }
        : { toolInput: { verdict: 'changes_requested', findings: [{ severity: 'major', file: 'src/module3.js', message: 'The due date is stored without validation; reject dates in the past with 400.' }], summary: 'One major finding.' } };
    }
    default:
      return { status: 400, errorType: 'invalid_request_error', message: `bench: no script for role ${role}` };
  }
}

interface Measured {
  variant: string;
  status: string;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  by_role: Record<string, { requests: number; input_tokens: number }>;
}

async function measure(variant: 'without tools' | 'with tools' | 'default (auto)', workflow: WorkflowDefinition): Promise<Measured> {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const prefix = `{bench-tools-${Date.now()}-${Math.random().toString(36).slice(2, 8)}}`;
  const artifacts = await mkdtemp(join(tmpdir(), 'bench-tools-'));
  const fake = await startFakeAnthropic({ apiKey: 'sk-ant-bench', responder: respond });
  const manager = await startManager({ redisUrl: url, prefix, warn: () => undefined });
  const pool = await startAgentPool({
    redisUrl: url,
    prefix,
    roles: Object.values(BUILTIN_ROLES),
    llm: new AnthropicLlmClient({ apiKey: 'sk-ant-bench', baseURL: fake.url, model: MODEL, maxRetries: 0 }),
    onError: () => undefined,
    logger: silentLogger(),
    toolSettings: { ...loadToolSettings({}), artifactsDir: (runId) => join(artifacts, runId) },
  });
  const redis = createRedis(url);
  const blocking = createRedis(url, { forWorker: true });
  const client = new FleetClient(redis, prefix);
  try {
    const runId = await client.submit({ workflow, requirements: REQUIREMENTS, provider: 'anthropic' });
    const result = await client.follow(runId, blocking, () => undefined);
    const byRole: Measured['by_role'] = {};
    for (const r of fake.requests) {
      const role = String(((r.body?.['tools'] as Array<{ name: string }> | undefined) ?? [])[0]?.name ?? '').replace(/^submit_/, '').replace(/_output$/, '');
      const entry = (byRole[role] ??= { requests: 0, input_tokens: 0 });
      entry.requests += 1;
      entry.input_tokens += Math.ceil(JSON.stringify([r.body?.['system'], r.body?.['messages'], r.body?.['tools']]).length / 4);
    }
    return {
      variant,
      status: result.status,
      requests: fake.billed.requests,
      input_tokens: fake.billed.input_tokens,
      output_tokens: fake.billed.output_tokens,
      cost_usd: costUsd(MODEL, { input_tokens: fake.billed.input_tokens, output_tokens: fake.billed.output_tokens }, MODEL_PRICES),
      by_role: byRole,
    };
  } finally {
    await pool.close(2000);
    await manager.close();
    await client.close();
    blocking.disconnect();
    const keys = await redis.keys(`${prefix.replace(/[{}]/g, (c) => `\\${c}`)}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    await fake.close();
    await rm(artifacts, { recursive: true, force: true });
  }
}

function silentLogger(): Parameters<typeof startAgentPool>[0]['logger'] {
  const noop = (): void => undefined;
  const log = { info: noop, warn: noop, error: noop, debug: noop, trace: noop, fatal: noop, child: () => log } as unknown;
  return log as Parameters<typeof startAgentPool>[0]['logger'];
}

const builtin = await loadBuiltinWorkflow('software-delivery');
const forced = (inputFiles: 'inline' | 'reference'): WorkflowDefinition => ({
  ...builtin,
  phases: builtin.phases.map((p) => (p.name === 'implementation' || p.name === 'review' ? { ...p, inputFiles } : p)),
});
const rows = [await measure('without tools', forced('inline')), await measure('with tools', forced('reference')), await measure('default (auto)', builtin)];
const [a, b, c] = rows as [Measured, Measured, Measured];
const pct = (x: number, y: number) => `${(((y - x) / x) * 100).toFixed(1)}%`;
const lines = [
  `software-delivery, ${FILES} files × ~${FILE_BYTES} bytes, one review round trip, model ${MODEL} (list prices)`,
  '',
  '| variant | status | model calls | input tokens | output tokens | cost USD | coder input | reviewer input |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map((r) => `| ${r.variant} | ${r.status} | ${r.requests} | ${r.input_tokens} | ${r.output_tokens} | ${r.cost_usd.toFixed(4)} | ${r.by_role.coder?.input_tokens ?? 0} | ${r.by_role.reviewer?.input_tokens ?? 0} |`),
  `| with tools vs without | | | ${pct(a.input_tokens, b.input_tokens)} | ${pct(a.output_tokens, b.output_tokens)} | ${pct(a.cost_usd, b.cost_usd)} | ${pct(a.by_role.coder?.input_tokens ?? 1, b.by_role.coder?.input_tokens ?? 0)} | ${pct(a.by_role.reviewer?.input_tokens ?? 1, b.by_role.reviewer?.input_tokens ?? 0)} |`,
  `| default vs without | | | ${pct(a.input_tokens, c.input_tokens)} | ${pct(a.output_tokens, c.output_tokens)} | ${pct(a.cost_usd, c.cost_usd)} | ${pct(a.by_role.coder?.input_tokens ?? 1, c.by_role.coder?.input_tokens ?? 0)} | ${pct(a.by_role.reviewer?.input_tokens ?? 1, c.by_role.reviewer?.input_tokens ?? 0)} |`,
];
console.log(lines.join('\n'));
const outDir = resolve(values.out);
await mkdir(outDir, { recursive: true });
const file = join(outDir, `agent-tools-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
await writeFile(file, `${JSON.stringify({ benchmark: 'agent-tools', files: FILES, file_bytes: FILE_BYTES, model: MODEL, rows }, null, 2)}\n`);
console.log(`\nwritten: ${file}`);
process.exit(0);
