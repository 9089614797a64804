/** What every route of the HTTP API shares: connections, stores and resolved options. */
import type { AccessStore, FleetClient, RunLabelStore, RunStore, TemplateRegistry, TriggerRegistry, WebhookSecretStore } from '@agentfleet/core';
import type { Redis } from 'ioredis';
import type { HistoryStore } from '../archive/history-store.js';
import type { ResolvedHttpApiOptions } from './options.js';

export interface ApiContext {
  /** The API's connection: offline queue off and a command timeout, so a Redis outage answers 503 at once. */
  redis: Redis;
  /** A new connection for one SSE client's blocking reads (closed when the client goes). */
  blockingConnection(): Redis;
  client: FleetClient;
  store: RunStore;
  registry: TemplateRegistry;
  access: AccessStore;
  labels: RunLabelStore;
  triggers: TriggerRegistry;
  webhookSecrets: WebhookSecretStore;
  /** The run archive (PostgreSQL), when one is configured: runs Redis no longer holds are read there. */
  history: HistoryStore | undefined;
  options: ResolvedHttpApiOptions;
}
