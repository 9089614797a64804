/**
 * Output while it is written: a coder phase's reply streams through the real Anthropic SDK from a
 * local Messages API server that holds its stream open until the client has seen a piece of it,
 * so "before the phase ends" is proven by an event, not a timer. The pieces reach an SSE client
 * (`GET /api/runs/:id/events?output=true`, `event: phase_output_delta`) and `fleet run --stream`,
 * live in a short-lived stream apart from the run's durable events, and never reach the result.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { describe, expect, it, onTestFailed } from 'vitest';
import { BUILTIN_ROLES, outputJsonSchema, type AgentRole } from '@agentfleet/agents';
import { PHASE_OUTPUT_TTL_MS, phaseOutputKey, strictJsonSchema } from '@agentfleet/core';
import { startHttpApi } from '@agentfleet/manager';
import { startFakeAnthropic } from './support/fake-anthropic.js';
import { FLEET_BIN, cliEnv, fakeAnthropicClient, startFleet, testWorkflow } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

const ADMIN_KEY = 'admin-key-stream-0123456789';
const CODE = {
  files: [
    { path: 'src/server.js', language: 'javascript', content: 'import { createServer } from "node:http";\ncreateServer((req, res) => res.end("ok")).listen(3000);\n' },
    { path: 'README.md', language: 'markdown', content: '# Todo API\n\nRun `node src/server.js`.\n' },
  ],
  notes: 'Run node src/server.js; no dependencies.',
};

/** One SSE message; `id` is undefined for messages sent without one. */
interface Sse {
  id: string | undefined;
  event: string;
  data: Record<string, unknown>;
}

/** Read SSE messages from `url`, telling `onMessage` of each, until the server ends the stream or `until` says stop. */
async function readSse(url: string, headers: Record<string, string>, onMessage: (m: Sse, all: Sse[]) => boolean | void): Promise<Sse[]> {
  const controller = new AbortController();
  const res = await fetch(url, { headers: { authorization: `Bearer ${ADMIN_KEY}`, accept: 'text/event-stream', ...headers }, signal: controller.signal });
  if (res.status !== 200 || !res.body) throw new Error(`SSE ${url} answered ${res.status}: ${await res.text()}`);
  const all: Sse[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = new Map(block.split('\n').filter((l) => !l.startsWith(':') && l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()] as const));
        const data = fields.get('data');
        if (data === undefined) continue;
        const m: Sse = { id: fields.get('id'), event: fields.get('event') ?? 'message', data: JSON.parse(data) as Record<string, unknown> };
        all.push(m);
        if (onMessage(m, all) === true) {
          controller.abort();
          return all;
        }
      }
    }
  } catch (err) {
    if (!controller.signal.aborted) throw err;
  }
  return all;
}

function released(): { promise: Promise<void>; release: () => void } {
  let release!: () => void;
  const promise = new Promise<void>((resolve) => (release = resolve));
  return { promise, release };
}

/**
 * The CLI's stderr without the progress lines that cut into a phase's output: a line such as
 * `▶ implementation started` (read after the first pieces) or a warning may be printed mid-output,
 * and a "continued" header then resumes the output.
 */
function uncut(text: string): string {
  // Progress lines start with a symbol (▶ ✓ … ! ⚙ …), never with the output's own ASCII (`-`, a key).
  return text.replace(/\n(?: {2,4}(?:[^ -~┆]|!)[^\n]*\n)+ {2}┆ implementation output \(attempt 1, continued\):\n/g, '');
}

describe('phase output streaming', () => {
  it('every built-in role schema is structured-output compatible for Anthropic', () => {
    for (const role of Object.values(BUILTIN_ROLES)) {
      const result = strictJsonSchema(outputJsonSchema(role), 'anthropic');
      expect(result.compatible, `${role.name}: ${result.reason}`).toBe(true);
    }
  });

  it("a thinking role's thinking tokens are counted in the phase's and the run's usage", async () => {
    await using fake = await startFakeAnthropic({ strict: 'honour' });
    fake.enqueue({ streamed: { toolInput: CODE, thinking: 'First the server, then the readme.', thinkingTokens: 42, usage: { output_tokens: 120 } } });
    const thinkingCoder: AgentRole = { ...(BUILTIN_ROLES['coder'] as AgentRole), thinking: true };
    await using fleet = await startFleet({ name: 'output-thinking', roles: [thinkingCoder], llm: fakeAnthropicClient(fake.url) });
    const wf = testWorkflow({ agents: ['coder'], phases: [{ name: 'implementation', agent: 'coder' }] });
    const { result } = await fleet.run(wf, 'Build a todo API');
    expect(result.status).toBe('completed');
    expect(fake.requests[0]?.body?.['thinking']).toEqual({ type: 'adaptive' });
    expect(result.phases[0]?.usage).toMatchObject({ output_tokens: 120, thinking_tokens: 42 });
    expect(result.usage).toMatchObject({ output_tokens: 120, thinking_tokens: 42 });
  });

  it('phase_output_delta events reach an SSE client before the phase ends; a failed stream retries the attempt whole; Last-Event-ID resume stays exact', async () => {
    await using fake = await startFakeAnthropic({ strict: 'honour' });
    const gate = released();
    fake.enqueue(
      { streamError: { errorType: 'overloaded_error', message: 'Overloaded' }, afterDeltas: 5, toolInput: { files: [{ path: 'HALF-WRITTEN', language: 'x', content: 'x'.repeat(64) }], notes: '' } },
      { streamed: { toolInput: CODE, chunkSize: 24, holdAfterChunks: 3, release: gate.promise } },
    );
    await using fleet = await startFleet({ name: 'output-sse', roles: [BUILTIN_ROLES['coder'] as AgentRole], llm: fakeAnthropicClient(fake.url) });
    const api = await startHttpApi({ redisUrl: fleet.url, prefix: fleet.prefix, port: 0, host: '127.0.0.1', adminKeys: [ADMIN_KEY], provider: 'anthropic', sseKeepAliveMs: 1000 });
    try {
      const wf = testWorkflow({ agents: ['coder'], phases: [{ name: 'implementation', agent: 'coder', retries: 2, retry_delay: 0.05 }] });
      const runId = await fleet.client.submit({ workflow: wf, requirements: 'Build a todo API', provider: 'anthropic' });
      let completedBeforeFirstDelta: boolean | undefined;
      const messages = await readSse(`${api.url}/api/runs/${runId}/events?output=true`, {}, (m, all) => {
        // The second attempt's first piece: the server holds the rest of its reply until now.
        if (m.event === 'phase_output_delta' && m.data['attempt'] === 2 && completedBeforeFirstDelta === undefined) {
          completedBeforeFirstDelta = all.some((x) => x.event === 'phase_completed');
          gate.release();
        }
        return m.event === 'run_finished';
      });
      expect(completedBeforeFirstDelta).toBe(false);
      const deltas = messages.filter((m) => m.event === 'phase_output_delta');
      const durable = messages.filter((m) => m.event !== 'phase_output_delta');
      // Pieces carry no SSE id, so a client's Last-Event-ID is always a durable event's.
      expect(deltas.every((m) => m.id === undefined)).toBe(true);
      expect(durable.every((m) => m.id !== undefined)).toBe(true);
      const textOf = (attempt: number) =>
        deltas
          .filter((m) => m.data['attempt'] === attempt && m.data['kind'] === 'tool_input')
          .sort((a, b) => (a.data['offset'] as number) - (b.data['offset'] as number))
          .map((m) => m.data['text'] as string)
          .join('');
      expect(textOf(1)).toContain('HALF-WRITTEN');
      expect(textOf(2)).toBe(JSON.stringify(CODE));
      expect(deltas[0]?.data).toMatchObject({ type: 'phase_output_delta', run_id: runId, phase: 'implementation', iteration: 1, call: 0, offset: 0 });
      const firstDelta2 = messages.findIndex((m) => m.event === 'phase_output_delta' && m.data['attempt'] === 2);
      expect(firstDelta2).toBeLessThan(messages.findIndex((m) => m.event === 'phase_completed'));
      expect(durable.map((m) => m.event)).toContain('phase_retry');

      // Nothing partial reached the result.
      const { status, results } = await fleet.client.result(runId);
      expect(status).toBe('completed');
      expect(results['implementation']).toEqual(CODE);
      expect(JSON.stringify(results)).not.toContain('HALF-WRITTEN');

      // The durable event stream holds no piece; the output stream is apart and expires by itself.
      const stored = await fleet.redis.xrange(fleet.client.store.eventsKey(runId), '-', '+');
      expect(stored.some(([, fields]) => fields.includes('phase_output_delta'))).toBe(false);
      const ttl = await fleet.redis.pttl(phaseOutputKey(fleet.prefix, runId));
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(PHASE_OUTPUT_TTL_MS);

      // Resume after the retry event: exactly the durable events after it, the pieces still kept again.
      const retry = durable.find((m) => m.event === 'phase_retry');
      const resumed = await readSse(`${api.url}/api/runs/${runId}/events?output=true`, { 'last-event-id': retry?.id ?? '' }, (m) => m.event === 'run_finished');
      const after = durable.slice(durable.indexOf(retry as Sse) + 1).map((m) => m.id);
      expect(resumed.filter((m) => m.event !== 'phase_output_delta').map((m) => m.id)).toEqual(after);
      // A replay of the finished run interleaves pieces and events as they were written.
      const replay = await readSse(`${api.url}/api/runs/${runId}/events?output=true`, {}, (m) => m.event === 'run_finished');
      const at = (pred: (m: Sse) => boolean) => replay.findIndex(pred);
      expect(at((m) => m.event === 'phase_output_delta' && m.data['attempt'] === 1)).toBeLessThan(at((m) => m.event === 'phase_retry'));
      expect(at((m) => m.event === 'phase_output_delta' && m.data['attempt'] === 2)).toBeGreaterThan(at((m) => m.event === 'phase_retry'));
      expect(at((m) => m.event === 'phase_output_delta' && m.data['attempt'] === 2)).toBeLessThan(at((m) => m.event === 'phase_completed'));
      // Without output=true the endpoint is as before: durable events only.
      const plain = await readSse(`${api.url}/api/runs/${runId}/events`, {}, (m) => m.event === 'run_finished');
      expect(plain.map((m) => m.id)).toEqual(durable.map((m) => m.id));
    } finally {
      await api.close();
    }
  });

  it('fleet watch --stream follows the output over the HTTP API (SSE) before the phase ends', async () => {
    await using fake = await startFakeAnthropic();
    const gate = released();
    fake.enqueue({ streamed: { toolInput: CODE, chunkSize: 20, holdAfterChunks: 5, release: gate.promise } });
    await using fleet = await startFleet({ name: 'output-watch', roles: [BUILTIN_ROLES['coder'] as AgentRole], llm: fakeAnthropicClient(fake.url) });
    const api = await startHttpApi({ redisUrl: fleet.url, prefix: fleet.prefix, port: 0, host: '127.0.0.1', adminKeys: [ADMIN_KEY], provider: 'anthropic', sseKeepAliveMs: 1000 });
    try {
      const wf = testWorkflow({ agents: ['coder'], phases: [{ name: 'implementation', agent: 'coder' }] });
      const runId = await fleet.client.submit({ workflow: wf, requirements: 'Build a todo API', provider: 'anthropic' });
      const env = cliEnv(fleet.url, fleet.prefix);
      const child = spawn(process.execPath, [FLEET_BIN, 'watch', runId, '--stream', '--manager-url', api.url, '--api-key', ADMIN_KEY], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      let seenBeforeEnd: { text: string; status: string } | undefined;
      onTestFailed(() => console.error(`fleet watch --stream printed on stderr:\n${stderr}`));
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (seenBeforeEnd === undefined && uncut(stderr).includes('path: src/server.js')) {
          seenBeforeEnd = { text: stderr, status: '' };
          void fleet.client.result(runId).then((r) => {
            if (seenBeforeEnd) seenBeforeEnd.status = r.status;
            gate.release();
          });
        }
      });
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code, stderr).toBe(0);
      expect(seenBeforeEnd?.status).toBe('active');
      expect(seenBeforeEnd?.text).not.toContain('implementation completed');
      expect(stderr).toContain('┆ implementation output (attempt 1):');
      expect(uncut(stderr)).toContain('notes: Run node src/server.js; no dependencies.');
      expect(uncut(stderr).indexOf('notes: Run node')).toBeLessThan(uncut(stderr).indexOf('implementation completed'));
    } finally {
      await api.close();
    }
  });

  it('fleet run --stream prints the coder files as they are written, before the phase ends', async () => {
    await using fake = await startFakeAnthropic();
    const gate = released();
    fake.enqueue({ streamed: { toolInput: CODE, chunkSize: 20, holdAfterChunks: 5, release: gate.promise } });
    const prefix = uniquePrefix('output-cli');
    const dir = await mkdtemp(join(tmpdir(), 'fleet-stream-'));
    const wfPath = join(dir, 'code-only.yaml');
    await writeFile(wfPath, 'name: code-only\nagents: [coder]\nphases:\n  - name: implementation\n    agent: coder\n');
    const env = { ...cliEnv(redisUrl(), prefix, { ANTHROPIC_API_KEY: 'sk-ant-test-key' }), ANTHROPIC_BASE_URL: fake.url, FLEET_PROVIDER: 'anthropic' };
    try {
      const child = spawn(process.execPath, [FLEET_BIN, 'run', '--stream', '--workflow', wfPath, '--out', join(dir, 'out'), 'Build a todo API'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      let stdout = '';
      let seenBeforeEnd: string | undefined;
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      // The first file's path is in the first five chunks: the server holds the reply until the CLI printed it.
      onTestFailed(() => console.error(`fleet run --stream printed on stderr:\n${stderr}\nstdout:\n${stdout}`));
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (seenBeforeEnd === undefined && uncut(stderr).includes('path: src/server.js')) {
          seenBeforeEnd = stderr;
          gate.release();
        }
      });
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code, `stderr:\n${stderr}\nstdout:\n${stdout}`).toBe(0);
      expect(seenBeforeEnd).toBeDefined();
      expect(seenBeforeEnd).not.toContain('implementation completed');
      expect(seenBeforeEnd).toContain('┆ implementation output (attempt 1):');
      // The whole output, rendered: file contents as source text, not JSON strings (a progress
      // line printed meanwhile may cut a line, then a "continued" header resumes it).
      const output = uncut(stderr);
      expect(output).toContain('content: import { createServer } from "node:http";\ncreateServer((req, res) => res.end("ok")).listen(3000);\n');
      expect(output).toContain('content: # Todo API\n\nRun `node src/server.js`.\n');
      expect(uncut(stderr)).toContain('notes: Run node src/server.js; no dependencies.');
      expect(uncut(stderr).indexOf('notes: Run node')).toBeLessThan(uncut(stderr).indexOf('implementation completed'));
    } finally {
      await rm(dir, { recursive: true, force: true });
      await cleanupPrefix(redisUrl(), prefix);
    }
  }, 90_000);
});
