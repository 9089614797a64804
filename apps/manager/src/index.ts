export { startManager, type Manager, type ManagerOptions } from './manager.js';
// Issue 4: HTTP API, end actions, state_schema check.
export { startHttpApi, type HttpApi, type HttpApiOptions, resolveHttpApiOptions } from './http/index.js';
export { END_ACTIONS_QUEUE, SIGNATURE_HEADER, TIMESTAMP_HEADER, signWebhook, toolQueueName, type EndActionsOptions } from './end-actions.js';
