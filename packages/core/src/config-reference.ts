/**
 * The configuration reference, `docs/configuration.md`, rendered from {@link SETTINGS_SCHEMA}: one
 * row per environment variable with its type, default and description. `npm run docs:config` writes
 * it; a test fails when the committed page differs from what this renders.
 */
import { z } from 'zod';
import { SETTINGS_SCHEMA } from './config.js';

/** One property of the schema's JSON Schema (input side, as a user writes the variable). */
interface PropertySchema {
  type?: string;
  enum?: unknown[];
  format?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  default?: unknown;
  description?: string;
  whenUnset?: string;
}

/** `integer ≥ 1, ≤ 65535`, `one of a, b`, `URL`, `string matching /…/`. */
function typeOf(p: PropertySchema): string {
  if (p.enum) return `one of ${p.enum.map((v) => `\`${String(v)}\``).join(', ')}`;
  const parts: string[] = [p.format === 'uri' ? 'URL' : (p.type ?? 'string')];
  if (p.minimum !== undefined) parts.push(`≥ ${p.minimum}`);
  if (p.exclusiveMinimum !== undefined) parts.push(`> ${p.exclusiveMinimum}`);
  if (p.maximum !== undefined && p.maximum < Number.MAX_SAFE_INTEGER) parts.push(`≤ ${p.maximum}`);
  if (p.pattern !== undefined) parts.push(`matching \`${p.pattern}\``);
  return parts.join(', ');
}

const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

/**
 * The Markdown page: a table of every variable of {@link SETTINGS_SCHEMA} in schema order, then the
 * OpenTelemetry variables the SDK reads itself.
 *
 * @throws Error naming the variable when a setting has no description (every setting must have one).
 */
export function renderConfigurationReference(): string {
  const json = z.toJSONSchema(SETTINGS_SCHEMA, { io: 'input', unrepresentable: 'any' }) as { properties: Record<string, PropertySchema> };
  const rows = Object.entries(json.properties).map(([name, p]) => {
    if (!p.description) throw new Error(`setting ${name} has no description: add .meta({ description }) to it in packages/core/src/config.ts`);
    const fallback = p.default !== undefined ? `\`${typeof p.default === 'string' ? p.default : JSON.stringify(p.default)}\`` : `unset: ${p.whenUnset ?? 'off'}`;
    return `| \`${name}\` | ${cell(typeOf(p))} | ${cell(fallback)} | ${cell(p.description)} |`;
  });
  return [
    '# Configuration',
    '',
    '<!-- Generated from SETTINGS_SCHEMA in packages/core/src/config.ts by `npm run docs:config`; edit the schema, not this page. -->',
    '',
    '`fleet run`, `fleet manager`, `fleet agents` and the commands that reach Redis check these environment variables at start, and stop with a message naming the variable and the fix when one is not valid. An empty value counts as unset. A command-line flag, where a command has one, takes precedence.',
    '',
    '| variable | type | default | description |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
    '## OpenTelemetry',
    '',
    'Traces and metrics follow the standard OpenTelemetry SDK variables (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/), read by the SDK itself:',
    '',
    '| variable | default | description |',
    '| --- | --- | --- |',
    '| `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) | unset: no spans are exported | OTLP/HTTP endpoint, e.g. `http://localhost:4318` (Jaeger) |',
    '| `OTEL_EXPORTER_OTLP_PROTOCOL` | `http/protobuf` | `http/protobuf` or `http/json` |',
    '| `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` | `agentfleet-manager`, `agentfleet-agents`, … per process | the resource of every span and metric |',
    '| `OTEL_METRICS_EXPORTER` | unset: metrics only on `FLEET_METRICS_PORT` | `otlp` also pushes metrics over OTLP |',
    '| `OTEL_METRIC_EXPORT_INTERVAL`, `OTEL_METRIC_EXPORT_TIMEOUT` | `60000`, the interval when only it is set | push period and timeout of OTLP metrics, ms |',
    '| `OTEL_SDK_DISABLED` | `false` | `true` turns telemetry off |',
    '| `TRACEPARENT`, `TRACESTATE` | unset | W3C trace context that `fleet run` and `fleet submit` continue: the calling script\'s span becomes the run\'s parent |',
    '',
  ].join('\n');
}
