/**
 * A real MCP server for tests, written with `@modelcontextprotocol/sdk`: a small project's files in
 * memory and a side effect to count.
 *
 * Tools:
 * - `read_file {path}`: the file's text (an error result when there is no such file)
 * - `list_files {}`: the paths, one a line
 * - `create_ticket {title}`: a side effect; answers `ticket <n> created` with n counting from 1
 *
 * Plain JavaScript, so a stdio server needs no loader: `node test/support/mcp-stdio-server.mjs`.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';

/**
 * @param {Record<string, string>} files - path → text
 * @param {(tool: string, args: unknown) => void} onCall - told of every call, before it is answered
 * @param {() => number} nextTicket - the number of the ticket a create_ticket call creates
 */
export function filesMcpServer(files, onCall, nextTicket) {
  const server = new McpServer({ name: 'test-files', version: '1.0.0' });
  server.registerTool('read_file', { description: 'Read one file of the project by its path.', inputSchema: { path: z.string() } }, async ({ path }) => {
    onCall('read_file', { path });
    const text = files[path];
    if (text === undefined) return { content: [{ type: 'text', text: `no file ${path}` }], isError: true };
    return { content: [{ type: 'text', text }] };
  });
  server.registerTool('list_files', { description: 'List the paths of the project files.', inputSchema: {} }, async () => {
    onCall('list_files', {});
    return { content: [{ type: 'text', text: Object.keys(files).join('\n') }] };
  });
  server.registerTool('create_ticket', { description: 'Create a ticket (a side effect).', inputSchema: { title: z.string() } }, async ({ title }) => {
    onCall('create_ticket', { title });
    return { content: [{ type: 'text', text: `ticket ${nextTicket()} created: ${title}` }] };
  });
  return server;
}
