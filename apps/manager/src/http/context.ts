/** What every route of the HTTP API shares: connections, stores and resolved options. */
import type { AccessStore, FleetClient, RunLabelStore, TemplateRegistry, TriggerRegistry, WebhookSecretStore } from '@agentfleet/core';
import type { RunStore } from '@agentfleet/core/internal';
import type { Redis } from 'ioredis';
import type { HistoryStore } from '../archive/history-store.js';
import type { ResolvedHttpApiOptions } from './options.js';
import type { RunEventHub } from './run-event-hub.js';
import type { StreamCounter } from './stream-counter.js';

export interface ApiContext {
  /** The API's connection: offline queue off and a command timeout, so a Redis outage answers 503 at once. */
  redis: Redis;
  /** The process's one blocking reader of run event streams, shared by every SSE client. */
  runEvents: RunEventHub;
  /** Open SSE streams per API key, against `sseMaxStreamsPerKey`. */
  sseStreams: StreamCounter;
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
