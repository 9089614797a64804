/**
 * How the built-in `software-delivery` hands the coder's files to the reviewer (`input_files: auto`),
 * end to end on real Redis through the real Anthropic SDK against the local Messages API server:
 * below `FLEET_INPUT_FILES_INLINE_MAX_BYTES` the files are inline in the reviewer's prompt and it has
 * no tools; above it the prompt names them (path and size) and the reviewer gets `list_files` and
 * `read_file`, lists them and reads the one it needs. Either can be forced: the threshold (`0`: always
 * by reference) for the whole pool, `input_files: inline | reference` per phase.
 */
import { BUILTIN_ROLES, designer, inputFilesFor, loadToolSettings, planner, startAgentPool, type AgentPool, type RoleInput } from '@agentfleet/agents';
import { loadBuiltinWorkflow, type RunResult, type WorkflowDefinition } from '@agentfleet/core';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FakeAnthropic, FakeReply, FakeRequest } from './support/fake-anthropic.js';
import { messagesOf, closeToolFleet, openToolFleet, type ToolFleet } from './support/tool-fleet.js';
import { fakeAnthropicClient } from './support/fleet.js';

const base: RoleInput = { requirements: 'Build a todo API', variables: {}, phase: 'planning', instructions: undefined, upstream: [], upstreamErrors: [] };
const plan = planner.offline(base);
const design = designer.offline({ ...base, upstream: [{ phase: 'planning', role: 'planner', output: plan }] });
const MARK = 'export const handler';

/** `count` files of about `bytes` bytes each. */
function project(count: number, bytes: number): { files: Array<{ path: string; language: string; content: string }>; notes: string } {
  const files = Array.from({ length: count }, (_, i) => {
    let content = `// src/m${i}.js\n`;
    while (content.length < bytes) content += `${MARK}${i} = () => ${i};\n`;
    return { path: `src/m${i}.js`, language: 'javascript', content };
  });
  return { files, notes: 'first version' };
}

const toolsOf = (r: FakeRequest | undefined): string[] => ((r?.body?.['tools'] ?? []) as Array<{ name: string }>).map((t) => t.name);
const roleOf = (r: FakeRequest): string => (toolsOf(r)[0] ?? '').replace(/^submit_|_output$/g, '');
const promptOf = (r: FakeRequest | undefined): string => JSON.stringify(messagesOf(r)[0]?.content ?? '');

let url: string;
let prefix: string;
let fake: FakeAnthropic;
let pool: AgentPool | undefined;
let conn: ToolFleet['conn'];
let artifacts: string;
let fleet: ToolFleet;

beforeEach(async () => {
  ({ url, prefix, fake, conn, artifacts } = fleet = await openToolFleet('input-files'));
});

afterEach(async () => {
  await closeToolFleet(fleet, pool);
  pool = undefined;
});

/** Run `workflow` with scripted agents: the coder writes `code`; the reviewer lists and reads when it can, then approves. */
async function deliver(workflow: WorkflowDefinition, code: ReturnType<typeof project>, inputFilesInlineMaxBytes?: number): Promise<{ result: RunResult; reviewer: FakeRequest[] }> {
  fake.setResponder((req): FakeReply => {
    const role = roleOf(req);
    if (role === 'planner') return { toolInput: plan };
    if (role === 'designer') return { toolInput: design };
    if (role === 'coder') return { toolInput: code };
    const rounds = messagesOf(req).filter((m) => m.role === 'assistant').length;
    const canRead = toolsOf(req).includes('read_file');
    if (canRead && rounds === 0) return { toolCalls: [{ name: 'list_files', input: {} }] };
    if (canRead && rounds === 1) return { toolCalls: [{ name: 'read_file', input: { path: 'files/src/m1.js' } }] };
    return { toolInput: { verdict: 'approve', findings: [], summary: 'Every criterion holds.' } };
  });
  pool = await startAgentPool({
    redisUrl: url,
    prefix,
    roles: Object.values(BUILTIN_ROLES),
    llm: fakeAnthropicClient(fake.url),
    onError: () => undefined,
    toolSettings: { ...loadToolSettings({}), artifactsDir: (runId) => join(artifacts, runId) },
    ...(inputFilesInlineMaxBytes !== undefined ? { inputFilesInlineMaxBytes } : {}),
  });
  const runId = await conn.client.submit({ workflow, requirements: 'Build a todo API', provider: 'anthropic' });
  const result = await conn.client.follow(runId, conn.blocking, () => undefined);
  return { result, reviewer: fake.requests.filter((r) => roleOf(r) === 'reviewer') };
}

describe('software-delivery: the reviewer gets the files inline or by reference, by their size', () => {
  it('small files (below the threshold) are inline and the reviewer has no tools', async () => {
    const { result, reviewer } = await deliver(await loadBuiltinWorkflow('software-delivery'), project(4, 2000));
    expect(result.status, JSON.stringify(result.errors)).toBe('completed');
    expect(reviewer).toHaveLength(1);
    expect(toolsOf(reviewer[0])).toEqual(['submit_reviewer_output']);
    expect(promptOf(reviewer[0])).toContain(`${MARK}3`);
    expect(promptOf(reviewer[0])).not.toContain('not included: read it with read_file');
  });

  it('large files (above the threshold) are named in the prompt; the reviewer lists them and reads one, and its prompt is smaller', async () => {
    const code = project(30, 3000); // 90 KB
    const { result, reviewer } = await deliver(await loadBuiltinWorkflow('software-delivery'), code);
    expect(result.status, JSON.stringify(result.errors)).toBe('completed');
    expect(result.results.review).toMatchObject({ verdict: 'approve' });
    expect(reviewer).toHaveLength(3); // list_files, read_file, submit
    expect(toolsOf(reviewer[0])).toEqual(['submit_reviewer_output', 'list_files', 'read_file']);
    const first = promptOf(reviewer[0]);
    expect(first).toContain('not included: read it with read_file');
    expect(first).toContain('files/src/m29.js');
    expect(first).not.toContain(`${MARK}29`);
    // What it read came back as a tool result: the file it asked for, from the artifacts directory.
    const read = JSON.stringify(messagesOf(reviewer[2]).at(-1)?.content ?? '');
    expect(read).toContain(`${MARK}1 =`);
    // Every request of its loop together carries less than the files inline would.
    const sent = reviewer.reduce((n, r) => n + JSON.stringify(r.body?.['messages']).length, 0);
    expect(sent).toBeLessThan(code.files.reduce((n, f) => n + f.content.length, 0));
  });

  it('forced: threshold 0 sends even small files by reference; input_files: inline keeps large files inline', async () => {
    const small = await deliver(await loadBuiltinWorkflow('software-delivery'), project(4, 2000), 0);
    expect(small.result.status).toBe('completed');
    expect(toolsOf(small.reviewer[0])).toEqual(['submit_reviewer_output', 'list_files', 'read_file']);
    expect(promptOf(small.reviewer[0])).not.toContain(`${MARK}3`);
    await pool?.close(2000);
    pool = undefined;
    const builtin = await loadBuiltinWorkflow('software-delivery');
    const inline: WorkflowDefinition = { ...builtin, phases: builtin.phases.map((p) => (p.name === 'review' ? { ...p, inputFiles: 'inline' } : p)) };
    const large = await deliver(inline, project(30, 3000));
    expect(large.result.status).toBe('completed');
    const last = large.reviewer.at(-1);
    expect(toolsOf(last)).toEqual(['submit_reviewer_output']);
    expect(promptOf(last)).toContain(`${MARK}29`);
  });
});

describe('inputFilesFor', () => {
  const files = (n: number, bytes: number) => ({ files: Array.from({ length: n }, (_, i) => ({ path: `f${i}`, content: 'x'.repeat(bytes) })) });
  it('auto: by reference above the threshold (a path counted once, its last version); explicit modes win; unset: by reference only with read_file', () => {
    expect(inputFilesFor({ inputFiles: 'auto' }, [files(2, 100)], 200)).toBe('inline');
    expect(inputFilesFor({ inputFiles: 'auto' }, [files(2, 100), files(1, 101)], 200)).toBe('reference');
    expect(inputFilesFor({ inputFiles: 'auto' }, [files(3, 100), files(3, 10)], 200)).toBe('inline');
    expect(inputFilesFor({ inputFiles: 'inline', tools: ['read_file'] }, [files(9, 1000)], 0)).toBe('inline');
    expect(inputFilesFor({ inputFiles: 'reference' }, [], 1000)).toBe('reference');
    expect(inputFilesFor({}, [files(9, 1000)], 0)).toBe('inline');
    expect(inputFilesFor({ tools: ['read_file'] }, [], 1000)).toBe('reference');
  });
});
