/**
 * The example modules the documentation shows (`examples/`, quoted byte for byte by
 * docs/agents-models-cost.md and docs/tools-and-library.md) load the way a user loads them: the role
 * through `FLEET_ROLE_MODULES`' loader, the tool through `FLEET_TOOL_MODULES`' registry, and the tool
 * posts to its webhook.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createToolRegistry, loadRoleModules, loadToolSettings } from '@agentfleet/agents';
import { afterEach, describe, expect, it } from 'vitest';

const example = (path: string) => fileURLToPath(new URL(`../examples/${path}`, import.meta.url));
const webhookBefore = process.env.SLACK_WEBHOOK;
afterEach(() => {
  if (webhookBefore === undefined) delete process.env.SLACK_WEBHOOK;
  else process.env.SLACK_WEBHOOK = webhookBefore;
});

describe('the documentation example modules', () => {
  it('examples/roles/release-notes.ts is a role FLEET_ROLE_MODULES loads', async () => {
    const [role] = await loadRoleModules([example('roles/release-notes.ts')]);
    expect(role?.name).toBe('release_notes');
    expect(role?.outputSchema.safeParse({ title: 'v2', notes: ['faster'] }).success).toBe(true);
  });

  it('examples/tools/slack-post.ts is a tool FLEET_TOOL_MODULES loads, and it posts to SLACK_WEBHOOK', async () => {
    const received: unknown[] = [];
    const server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        received.push(JSON.parse(body));
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const registry = await createToolRegistry([example('tools/slack-post.ts')]);
      const tool = registry.get('slack_post');
      expect(tool, 'slack_post is registered').toBeDefined();
      process.env.SLACK_WEBHOOK = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
      const params = tool!.validate({ channel: '#releases', text: 'v2 is out' });
      const ctx = { signal: new AbortController().signal, artifactsDir: '/tmp', runId: 'r1', phase: 'notify', settings: loadToolSettings({}) };
      const out = await tool!.tool.handler(params, ctx);
      expect(out).toEqual({ status: 200 });
      expect(received).toEqual([{ channel: '#releases', text: 'v2 is out' }]);
    } finally {
      server.close();
    }
  });
});
