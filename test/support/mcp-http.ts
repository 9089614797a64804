/**
 * The test MCP server (./mcp-files-server.mjs) over streamable HTTP, in this process, on 127.0.0.1
 * and a free port: stateless (a server and a transport per request, as the SDK's stateless example
 * does), counting every tool call, with a way to wait for the n-th call.
 *
 * @example
 * await using mcp = await startMcpHttpServer({ 'src/a.js': 'export {}' });
 * // workflow: mcp_servers: [{ name: files, url: mcp.url }]
 */
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { filesMcpServer } from './mcp-files-server.mjs';

export interface McpHttpServer extends AsyncDisposable {
  /** The endpoint, `http://127.0.0.1:<port>/mcp`. */
  readonly url: string;
  /** Every tool call, in order. */
  readonly calls: ReadonlyArray<{ tool: string; args: unknown }>;
  /** Resolves when the `count`-th call arrives. */
  waitForCalls(count: number): Promise<void>;
  close(): Promise<void>;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? (JSON.parse(text) as unknown) : undefined;
}

export async function startMcpHttpServer(files: Record<string, string>): Promise<McpHttpServer> {
  const calls: Array<{ tool: string; args: unknown }> = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  let tickets = 0;
  const onCall = (tool: string, args: unknown): void => {
    calls.push({ tool, args });
    for (const w of waiters.filter((x) => calls.length >= x.count)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  const http = createServer((req, res) => {
    void (async () => {
      const body = await readJson(req);
      const server = filesMcpServer(files, onCall, () => ++tickets);
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      res.on('close', () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(req, res, body);
    })().catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const close = (): Promise<void> =>
    new Promise<void>((resolve) => {
      http.close(() => resolve());
      http.closeAllConnections();
    });
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    calls,
    waitForCalls(count) {
      if (calls.length >= count) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push({ count, resolve }));
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
