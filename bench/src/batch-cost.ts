/**
 * `npm run bench:batch [-- --runs N --out DIR]`: what a run costs with its phases sent through the
 * Message Batches API (`fleet run --batch`, `mode: batch`) against the same run sent directly,
 * through the real fleet (manager, agent pool, real Anthropic SDK) on a private Redis, against a
 * local server that speaks the Messages and Message Batches APIs and bills the same tokens for the
 * same request either way (input: 4 characters of the request a token; output: of the reply).
 *
 * Writes `bench/results/batch-cost-<date>.json` and prints a markdown table. Cost is the fleet's
 * own report (list prices of `llm/prices.ts`); wall time on a local server says nothing of the
 * hours a real batch may take, and is shown only to make that plain.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BUILTIN_ROLES, startAgentPool, type RoleInput } from '@agentfleet/agents';
import { AnthropicLlmClient, FleetClient, compileWorkflow, createAnthropicBatches, createLogger, createRedis, type RunResult } from '@agentfleet/core';
import { startManager } from '@agentfleet/manager';
import { startPrivateRedis } from './redis-util.js';

const MODEL = 'claude-sonnet-5-5'; // priced as the claude-sonnet family: $3 / $15 per MTok
const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, out: { type: 'string' } }, strict: true });
const RUNS = Math.max(1, Number(values.runs));
const OUT = resolve(values.out ?? join(fileURLToPath(new URL('../results/', import.meta.url))));

const base: RoleInput = { requirements: 'Build a todo API with users and due dates', variables: {}, phase: 'p', instructions: undefined, upstream: [], upstreamErrors: [] };
const tokens = (value: unknown) => Math.max(1, Math.ceil((JSON.stringify(value) ?? '').length / 4));

/** A Messages API reply to `params`: the forced tool's role answers with its offline output. */
function messageFor(params: Record<string, unknown>): Record<string, unknown> {
  const choice = params['tool_choice'] as { name?: string } | undefined;
  const role = (choice?.name ?? '').replace(/^submit_|_output$/g, '');
  const agent = Object.values(BUILTIN_ROLES).find((r) => r.name === role);
  if (!agent) throw new Error(`bench server: no built-in role answers tool ${String(choice?.name)}`);
  const output: unknown = agent.offline(base);
  return {
    id: `msg_${randomBytes(8).toString('hex')}`,
    type: 'message',
    role: 'assistant',
    model: params['model'],
    content: [{ type: 'tool_use', id: `toolu_${randomBytes(8).toString('hex')}`, name: choice?.name, input: output }],
    stop_reason: 'tool_use',
    stop_sequence: null,
    usage: { input_tokens: tokens([params['system'], params['messages'], params['tools']]), output_tokens: tokens(output), cache_read_input_tokens: 0, cache_creation_input_tokens: 0 },
  };
}

/** The local server: `POST /v1/messages`, and batches that end as soon as they are created. */
async function startServer(): Promise<{ url: string; batches: number; direct: number; close(): Promise<void> }> {
  const batches = new Map<string, Array<{ custom_id: string; message: Record<string, unknown> }>>();
  const counts = { batches: 0, direct: 0 };
  const send = (res: ServerResponse, body: unknown, type = 'application/json') => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(200, { 'content-type': type, 'request-id': `req_${randomBytes(6).toString('hex')}` });
    res.end(text);
  };
  const read = (req: IncomingMessage) =>
    new Promise<Record<string, unknown>>((ok) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => ok(raw ? (JSON.parse(raw) as Record<string, unknown>) : {}));
    });
  let url = '';
  const batchJson = (id: string) => ({
    id,
    type: 'message_batch',
    processing_status: 'ended',
    request_counts: { processing: 0, succeeded: batches.get(id)?.length ?? 0, errored: 0, canceled: 0, expired: 0 },
    created_at: new Date().toISOString(),
    ended_at: new Date().toISOString(),
    expires_at: new Date(Date.now() + 86_400_000).toISOString(),
    cancel_initiated_at: null,
    archived_at: null,
    results_url: `${url}/v1/messages/batches/${id}/results`,
  });
  const server = createServer((req, res) => {
    void (async () => {
      const path = req.url?.split('?')[0] ?? '';
      if (req.method === 'POST' && path === '/v1/messages') {
        counts.direct += 1;
        return send(res, messageFor(await read(req)));
      }
      if (req.method === 'POST' && path === '/v1/messages/batches') {
        counts.batches += 1;
        const id = `msgbatch_${randomBytes(8).toString('hex')}`;
        const requests = (await read(req))['requests'] as Array<{ custom_id: string; params: Record<string, unknown> }>;
        batches.set(id, requests.map((r) => ({ custom_id: r.custom_id, message: messageFor(r.params) })));
        return send(res, batchJson(id));
      }
      const m = /^\/v1\/messages\/batches\/([^/]+)(\/results)?$/.exec(path);
      if (m?.[1] && batches.has(m[1])) {
        if (!m[2]) return send(res, batchJson(m[1]));
        const lines = (batches.get(m[1]) ?? []).map((r) => JSON.stringify({ custom_id: r.custom_id, result: { type: 'succeeded', message: r.message } }));
        return send(res, `${lines.join('\n')}\n`, 'application/binary');
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ type: 'error', error: { type: 'not_found_error', message: 'Not Found' } }));
    })();
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    get batches() {
      return counts.batches;
    },
    get direct() {
      return counts.direct;
    },
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

const workflow = compileWorkflow({
  name: 'bench-batch-cost',
  agents: ['planner', 'designer', 'summarizer'],
  phases: [
    { name: 'planning', agent: 'planner' },
    { name: 'design', agent: 'designer', depends_on: ['planning'] },
    { name: 'summary', agent: 'summarizer', depends_on: ['design'] },
  ],
});

const redis = await startPrivateRedis();
const server = await startServer();
const prefix = `{bench-batch-${randomBytes(3).toString('hex')}}`;
const llm = new AnthropicLlmClient({ apiKey: 'sk-ant-bench', baseURL: server.url, model: MODEL, maxRetries: 0 });
const manager = await startManager({
  redisUrl: redis.url,
  prefix,
  warn: () => undefined,
  logger: createLogger({ name: 'manager', level: 'warn' }),
  batches: createAnthropicBatches({ anthropicApiKey: 'sk-ant-bench', anthropicBaseUrl: server.url }),
  batchPollMs: 100,
});
const pool = await startAgentPool({ redisUrl: redis.url, prefix, roles: Object.values(BUILTIN_ROLES), llm, onError: () => undefined, logger: createLogger({ name: 'agents', level: 'warn' }) });
const conn = createRedis(redis.url);
const blocking = createRedis(redis.url, { forWorker: true });
const client = new FleetClient(conn, prefix);

async function one(batch: boolean): Promise<RunResult> {
  const runId = await client.submit({ workflow, requirements: base.requirements, provider: 'anthropic', ...(batch ? { callMode: 'batch' as const } : {}) });
  return client.follow(runId, blocking, () => undefined);
}

const rows: Array<{ mode: string; runs: number; cost_usd: number; input_tokens: number; output_tokens: number; batch_savings_usd: number; wall_ms_p50: number }> = [];
for (const batch of [false, true]) {
  const results: RunResult[] = [];
  for (let i = 0; i < RUNS; i++) results.push(await one(batch));
  if (results.some((r) => r.status !== 'completed')) throw new Error(`a ${batch ? 'batch' : 'direct'} run did not complete: ${JSON.stringify(results.find((r) => r.status !== 'completed')?.errors)}`);
  const walls = results.map((r) => r.duration_ms).sort((a, b) => a - b);
  rows.push({
    mode: batch ? 'batch' : 'direct',
    runs: RUNS,
    cost_usd: results.reduce((s, r) => s + (r.usage.cost_usd ?? 0), 0) / RUNS,
    input_tokens: results.reduce((s, r) => s + r.usage.input_tokens, 0) / RUNS,
    output_tokens: results.reduce((s, r) => s + r.usage.output_tokens, 0) / RUNS,
    batch_savings_usd: results.reduce((s, r) => s + r.batch_savings_usd, 0) / RUNS,
    wall_ms_p50: walls[Math.floor(walls.length / 2)] ?? 0,
  });
}
const [d, b] = rows as [(typeof rows)[number], (typeof rows)[number]];
const summary = { model: MODEL, workflow: workflow.name, phases: workflow.phases.length, rows, batch_to_direct_cost: b.cost_usd / d.cost_usd, direct_calls: server.direct, batches: server.batches };

await pool.close(2000);
await manager.close();
blocking.disconnect();
conn.disconnect();
await server.close();
await redis.stop();

await mkdir(OUT, { recursive: true });
const file = join(OUT, `batch-cost-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
await writeFile(file, `${JSON.stringify(summary, null, 2)}\n`);
process.stdout.write(
  [
    `Batch vs direct, ${workflow.phases.length}-phase run on ${MODEL}, ${RUNS} run(s) each (per run):`,
    '',
    '| mode | cost USD | input tokens | output tokens | batch discount saved USD | wall p50 ms (local server) |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.mode} | ${r.cost_usd.toFixed(6)} | ${r.input_tokens} | ${r.output_tokens} | ${r.batch_savings_usd.toFixed(6)} | ${r.wall_ms_p50} |`),
    '',
    `batch / direct cost: ${(summary.batch_to_direct_cost * 100).toFixed(1)}%; Messages API calls (direct runs): ${server.direct}, message batches (batch runs): ${server.batches}; written to ${file}`,
    '',
  ].join('\n'),
);
process.exit(0);
