/**
 * Prometheus names for OpenTelemetry metrics, as the OpenTelemetry "Prometheus and OpenMetrics
 * compatibility" spec converts them: the unit becomes a name suffix (`s` → `_seconds`, `USD` →
 * `_usd`, annotations in braces such as `{job}` add nothing), and monotonic sums get `_total` (added
 * by the Prometheus exporter itself). The OpenTelemetry JS Prometheus exporter adds no unit
 * suffix, while a Collector's `prometheus` exporter does by default, so the `/metrics` endpoint adds
 * them here: the same metric then has the same name whether it is scraped from AgentFleet or pushed
 * over OTLP and converted by a Collector.
 */
import type { CollectionResult } from '@opentelemetry/sdk-metrics';

/** Units whose Prometheus suffix differs from the unit itself (UCUM → Prometheus base units). */
const UNIT_SUFFIXES: Readonly<Record<string, string>> = {
  s: 'seconds',
  ms: 'milliseconds',
  By: 'bytes',
  '1': 'ratio',
  USD: 'usd',
};

/**
 * `name` with the Prometheus suffix of `unit` appended, unless it already ends with it.
 * @param unit - a UCUM unit (`s`, `By`, `USD`); `''` or an annotation such as `{token}` adds nothing.
 * @example withUnitSuffix('fleet.phase.duration', 's') // 'fleet.phase.duration_seconds'
 */
export function withUnitSuffix(name: string, unit: string): string {
  const trimmed = unit.replace(/\{[^}]*\}/g, '').trim();
  if (trimmed === '') return name;
  const suffix = UNIT_SUFFIXES[trimmed] ?? trimmed.toLowerCase().replace(/[^a-z0-9]+/g, '_');
  return name.toLowerCase().endsWith(`_${suffix}`) ? name : `${name}_${suffix}`;
}

/** `result` with every metric renamed by {@link withUnitSuffix}; the data points are shared, not copied. */
export function withUnitSuffixes(result: CollectionResult): CollectionResult {
  return {
    ...result,
    resourceMetrics: {
      ...result.resourceMetrics,
      scopeMetrics: result.resourceMetrics.scopeMetrics.map((scope) => ({
        ...scope,
        metrics: scope.metrics.map((metric) => ({
          ...metric,
          descriptor: { ...metric.descriptor, name: withUnitSuffix(metric.descriptor.name, metric.descriptor.unit) },
        })),
      })),
    },
  };
}
