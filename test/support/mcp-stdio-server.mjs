/**
 * The test MCP server (./mcp-files-server.mjs) over stdio. Its files come from the environment
 * (`MCP_FILES`, JSON path → text); each call is appended as a JSON line to `MCP_CALLS_FILE` (when
 * set), so a test counts the calls across the server processes the workers start.
 */
import { appendFileSync } from 'node:fs';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { filesMcpServer } from './mcp-files-server.mjs';

const files = JSON.parse(process.env.MCP_FILES ?? '{}');
const callsFile = process.env.MCP_CALLS_FILE;
let tickets = 0;
const server = filesMcpServer(
  files,
  (tool, args) => {
    if (callsFile) appendFileSync(callsFile, `${JSON.stringify({ tool, args })}\n`);
  },
  () => ++tickets,
);
await server.connect(new StdioServerTransport());
