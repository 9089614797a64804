/**
 * `@agentfleet/core/internal`: the runtime pieces the AgentFleet apps (manager, agent pools, CLI,
 * host) are built from: the run store and its deadline index, the store scripts, the run driver,
 * the manager queue, the batch store, the tool journal. Not for applications: they use the public
 * entry point (`@agentfleet/core`: `FleetClient`, workflows, the contracts), whose shapes stay
 * stable; these change with the apps.
 */
export {
  RunStore,
  deadlineMember,
  parseDeadlineMember,
  type DeadlineChanges,
  type DeadlineRef,
  type RunIndexFilter,
  type RunIndexPosition,
  type RunIndexScan,
  type SideRunEvent,
  type ToolCallEvent,
  type StoredRun,
} from './store/run-store.js';
// The run record's documents as stored: for tools that copy or inspect run records (the console benchmark's seeder).
export { RUN_RECORD_VERSION, decodeRunMeta, decodeRunResult, decodeRunState, encodeRunMeta, encodeRunResult, encodeRunState } from './store/run-codec.js';
// The text of each store script, as sent with EVAL (its SHA1 is what EVALSHA sends): for fault tools that pick out a command on the wire.
export { commandSource, type StoreCommandName } from './store/commands.js';
export { ToolJournal, type ToolJournalEntry, type ToolJournalReplay } from './store/tool-journal.js';
export { COMMIT_FAILURE_MESSAGE, DEFAULT_DEADLINE_GRACE_MS, RunDriver, cancelChannel, eventRejectedError, isEventRejected, followUpThroughManager, hasEndAction, phaseDeadlineMs, type Applied, type FollowUpAction, type RunDriverOptions } from './engine/driver.js';
export { ManagerQueue } from './queues/manager-queue.js';
export { BatchStore, batchCallKey, type OpenBatch } from './store/batch-store.js';
export { tracerProviderRegistered } from './telemetry/trace.js';
