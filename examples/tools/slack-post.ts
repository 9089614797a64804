// A tool of your own: the tools pool loads it with FLEET_TOOL_MODULES=examples/tools/slack-post.ts
import type { FleetTool } from '@agentfleet/agents';
import { FleetError } from '@agentfleet/core';
import { z } from 'zod';

const parameters = z.object({ channel: z.string(), text: z.string() });

const slackPost: FleetTool<z.infer<typeof parameters>> = {
  name: 'slack_post',
  description: 'Post a message to a Slack channel through an incoming webhook (SLACK_WEBHOOK).',
  parameters,
  async handler(p, ctx) {
    const webhook = process.env.SLACK_WEBHOOK;
    if (!webhook) throw new FleetError('TOOL_INPUT_INVALID', 'slack_post: set SLACK_WEBHOOK on the tools pool to the incoming webhook URL');
    const res = await fetch(webhook, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(p), signal: ctx.signal });
    if (!res.ok) throw new FleetError('TOOL_FAILED', `slack_post: the webhook answered ${res.status}`); // retried
    return { status: res.status };
  },
};
export default slackPost;
