/** The manager's HTTP API. */
export { startHttpApi, type HttpApi } from './server.js';
export type { HttpApiOptions } from './options.js';
export { resolveHttpApiOptions } from './options.js';
export { sseMessage } from './sse.js';
