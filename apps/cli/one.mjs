import { FleetClient, createRedis, loadBuiltinWorkflow } from '@agentfleet/core';
const prefix = process.env.FLEET_QUEUE_PREFIX;
const redis = createRedis('redis://127.0.0.1:6379');
const blocking = createRedis('redis://127.0.0.1:6379', { forWorker: true });
const client = new FleetClient(redis, prefix);
const wf = await loadBuiltinWorkflow('software-delivery');
const id = await client.submit({ workflow: wf, requirements: 'A todo API', provider: 'offline' });
await client.follow(id, blocking, () => undefined);
await client.close(); redis.disconnect(); blocking.disconnect();
