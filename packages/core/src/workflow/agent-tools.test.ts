import { describe, expect, it } from 'vitest';
import { FleetError } from '../errors.js';
import { compileWorkflow } from './compile.js';

function messageOf(raw: unknown): string {
  try {
    compileWorkflow(raw);
  } catch (err) {
    if (err instanceof FleetError) return err.message;
    throw err;
  }
  throw new Error('expected compileWorkflow to throw');
}

const base = { name: 'wf', agents: ['coder'] };

describe('tools, mcp_servers and max_turns in a workflow', () => {
  it('compiles a phase\'s tools and max_turns and the workflow\'s MCP servers with their defaults', () => {
    const def = compileWorkflow({
      ...base,
      mcp_servers: [{ name: 'files', command: 'node', args: ['server.mjs'], tools: ['read_file'] }, { name: 'web', url: 'http://127.0.0.1:8080/mcp' }],
      phases: [{ name: 'code', agent: 'coder', tools: ['files', 'read_file', 'files'], max_turns: 4 }],
    });
    expect(def.phases[0]).toMatchObject({ tools: ['files', 'read_file'], maxTurns: 4 });
    expect(def.mcpServers).toEqual([
      { name: 'files', command: 'node', args: ['server.mjs'], env: {}, headers: {}, tools: ['read_file'] },
      { name: 'web', url: 'http://127.0.0.1:8080/mcp', args: [], env: {}, headers: {} },
    ]);
  });

  it('refuses a server with both or neither of command and url, a duplicate server, a bad URL and tools on a tool phase, naming the field', () => {
    expect(messageOf({ ...base, mcp_servers: [{ name: 'x' }], phases: [{ name: 'code', agent: 'coder' }] })).toContain('exactly one of "command" (stdio) and "url"');
    expect(messageOf({ ...base, mcp_servers: [{ name: 'x', command: 'node', url: 'http://127.0.0.1/mcp' }], phases: [{ name: 'code', agent: 'coder' }] })).toContain('exactly one of');
    expect(messageOf({ ...base, mcp_servers: [{ name: 'x', url: 'ftp://host/mcp' }], phases: [{ name: 'code', agent: 'coder' }] })).toContain('mcp_servers[].url must be an http:// or https:// URL');
    expect(messageOf({ ...base, mcp_servers: [{ name: 'x', command: 'a' }, { name: 'x', command: 'b' }], phases: [{ name: 'code', agent: 'coder' }] })).toContain('MCP server "x" is declared twice');
    expect(messageOf({ ...base, phases: [{ name: 'fetch', tool: 'http_request', tools: ['read_file'] }] })).toContain('"tools" and "max_turns" belong to an agent phase');
    expect(messageOf({ ...base, phases: [{ name: 'code', agent: 'coder', max_turns: 0 }] })).toContain('max_turns must be at least 1');
    expect(messageOf({ ...base, phases: [{ name: 'code', agent: 'coder', tools: ['read file'] }] })).toContain('tools entry must start with a letter');
  });
});
