/**
 * The `--metrics-port` flag of `fleet manager` and `fleet agents`: where the Prometheus `/metrics`
 * endpoint listens. Falls back to `FLEET_METRICS_PORT`; unset means no endpoint.
 */
import { FleetError } from '@agentfleet/core';
import type { TelemetryHandle } from '@agentfleet/host';
import { Option } from 'commander';
import { say } from './shared.js';

/** `--metrics-port <port>`: an integer 1–65535. */
export function metricsPortOption(): Option {
  return new Option('--metrics-port <port>', 'serve Prometheus metrics at http://<host>:<port>/metrics (default FLEET_METRICS_PORT; none when unset)').argParser(
    (value: string): number => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1 || n > 65535) {
        throw new FleetError('INVALID_INPUT', `--metrics-port must be a TCP port between 1 and 65535, got "${value}"`);
      }
      return n;
    },
  );
}

/** Print where metrics are served, when they are. */
export function sayMetrics(component: string, telemetry: TelemetryHandle): void {
  if (telemetry.metricsPort !== undefined) say(`${component}: metrics at http://localhost:${telemetry.metricsPort}/metrics`);
}
