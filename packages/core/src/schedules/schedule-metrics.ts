/**
 * The schedules' metric: `fleet.schedule.fires` (Prometheus `fleet_schedule_fires_total`), one count
 * per fire decided, by schedule and outcome (`start`, `skipped`, `missed`). Recorded by the process
 * that decided the fire (a manager, or the API or CLI for a trigger), once per fire whoever else
 * processes it again. Telemetry never throws into the caller.
 */
import { diag, metrics, type Counter, type MeterProvider } from '@opentelemetry/api';
import { FleetAttributes } from '../telemetry/attributes.js';
import { METER_NAME } from '../telemetry/metrics.js';

/** OpenTelemetry name of the counter. */
export const SCHEDULE_FIRES_METRIC = 'fleet.schedule.fires';

let cached: { provider: MeterProvider; counter: Counter } | undefined;

/** Count one decided fire of `schedule`. */
export function recordScheduleFire(schedule: string, outcome: 'start' | 'skipped' | 'missed'): void {
  try {
    const provider = metrics.getMeterProvider();
    if (cached?.provider !== provider) {
      cached = { provider, counter: provider.getMeter(METER_NAME).createCounter(SCHEDULE_FIRES_METRIC, { description: 'Schedule fires, by what each did', unit: '{fire}' }) };
    }
    cached.counter.add(1, { [FleetAttributes.ScheduleName]: schedule, [FleetAttributes.ScheduleOutcome]: outcome });
  } catch (err) {
    diag.warn('agentfleet: could not record a schedule fire', err);
  }
}
