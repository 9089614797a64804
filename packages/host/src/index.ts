/**
 * `@agentfleet/host`: what an AgentFleet process (`fleet manager`, `fleet agents`, `fleet run`)
 * starts for itself and a library user of `@agentfleet/core` does not: the OpenTelemetry NodeSDK
 * with its exporters, and the Prometheus `/metrics` listener. Depended on by the apps only.
 */
export { startTelemetry } from './telemetry-sdk.js';
export type { TelemetryHandle, TelemetryOptions } from './telemetry-sdk.js';
