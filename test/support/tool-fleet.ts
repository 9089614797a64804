/**
 * What every tool-loop test file starts per test: a unique prefix on the shared Redis, the local
 * Messages API server (`sk-ant-test-key`), a quiet manager, a connection and an artifacts directory;
 * {@link closeToolFleet} closes them with the agent pool the test started, and drops the prefix.
 *
 * @example
 * let fleet: ToolFleet;
 * beforeEach(async () => ({ url, prefix, fake, manager, conn, artifacts } = fleet = await openToolFleet('agent-tools')));
 * afterEach(() => closeToolFleet(fleet, pool));
 */
import type { AgentPool } from '@agentfleet/agents';
import type { Manager } from '@agentfleet/manager';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, quietManager } from '../faults/helpers.js';
import { startFakeAnthropic, type FakeAnthropic, type FakeRequest } from './fake-anthropic.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './redis.js';

export interface ToolFleet {
  url: string;
  prefix: string;
  fake: FakeAnthropic;
  manager: Manager;
  conn: ReturnType<typeof connect>;
  /** A fresh directory for the runs' artifacts (removed on close). */
  artifacts: string;
}

export async function openToolFleet(name: string): Promise<ToolFleet> {
  const url = redisUrl();
  const prefix = uniquePrefix(name);
  const fake = await startFakeAnthropic({ apiKey: 'sk-ant-test-key' });
  const manager = await quietManager(url, prefix);
  const conn = connect(url, prefix);
  const artifacts = await mkdtemp(join(tmpdir(), `${name}-`));
  return { url, prefix, fake, manager, conn, artifacts };
}

/** Close `pool` (when the test started one), then everything {@link openToolFleet} opened. */
export async function closeToolFleet(fleet: ToolFleet, pool: AgentPool | undefined): Promise<void> {
  await pool?.close(2000);
  await fleet.manager.close();
  await fleet.conn.close();
  await fleet.fake.close();
  await cleanupPrefix(fleet.url, fleet.prefix);
  await rm(fleet.artifacts, { recursive: true, force: true });
}

/** A content block of a Messages API request, as the fake server received it. */
export type MessageBlock = Record<string, unknown>;

/** The messages of a request the fake server received. */
export function messagesOf(r: FakeRequest | undefined): Array<{ role: string; content: string | MessageBlock[] }> {
  return (r?.body?.['messages'] ?? []) as Array<{ role: string; content: string | MessageBlock[] }>;
}

/** Every content block of `type` in a request's messages. */
export function blocksOf(r: FakeRequest | undefined, type: string): MessageBlock[] {
  return messagesOf(r).flatMap((m) => (Array.isArray(m.content) ? m.content.filter((b) => b['type'] === type) : []));
}
