export { startManager, type Manager, type ManagerOptions } from './manager.js';
// Issue 4: HTTP API, end actions, state_schema check.
export { startHttpApi, type HttpApi, type HttpApiOptions, resolveHttpApiOptions } from './http/index.js';
export { DELIVERY_HEADER, END_ACTIONS_QUEUE, SIGNATURE_HEADER, TIMESTAMP_HEADER, deliveryIdOf, signWebhook, toolQueueName, type EndActionsOptions } from './end-actions.js';
export { openHistoryStore, MIGRATIONS_DIR, type HistoryStore, type HistoryStoreOptions, type ArchivedRun, type ArchivedRunSummary, type RunListFilter, type WorkflowStats } from './archive/history-store.js';
export { ARCHIVE_QUEUE, startArchiver, type Archiver, type ArchiverOptions } from './archive/archiver.js';
export { purgeRuns, type PurgeOptions } from './archive/purge.js';
export { dailyStats, failureStats, type AnalyticsFilter, type DailyStats, type FailureStats, type RunFact } from './archive/run-analytics.js';
