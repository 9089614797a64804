/**
 * Structured logs: one JSON object per line on stderr (pino), carrying the active span's `trace_id`
 * and `span_id`, so a log line leads to its trace in Jaeger and back.
 *
 * Secrets never reach the output, by three independent means:
 * - pino `redact` censors known secret fields (`apiKey`, `anthropicApiKey`, `password`,
 *   `authorization` and `x-api-key` headers) wherever they sit in a logged object;
 * - every line is scrubbed before it is written: the values of `ANTHROPIC_API_KEY` and of the
 *   password in `REDIS_URL` (and any passed as `secrets`), any `sk-ant-…` key, and the password of
 *   any `redis://` / `rediss://` URL;
 * - callers log Redis URLs through `redactRedisUrl`.
 *
 * Human progress lines of the CLI (`say`) are UI, not logs, and stay as they are. With
 * {@link setLogFormat}`('human')` (the `fleet` CLI's default) the lines are rendered for a person
 * instead of as JSON, each distinct line once (human-log.ts).
 */
import { context, isSpanContextValid, trace } from '@opentelemetry/api';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { logLevelSetting, secretSettings } from '../config.js';
import { humanDestination } from './human-log.js';

/** A pino logger. */
export type FleetLogger = Logger;

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** The component, e.g. `manager`, `agents`: the `name` field of every line. */
  name: string;
  /**
   * `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`.
   * @defaultValue `FLEET_LOG_LEVEL`, else the level set by {@link setDefaultLogLevel}, else `info`
   *   (`warn` in the human format)
   */
  level?: string | undefined;
  /** More secret values to scrub from every line (each at least 6 characters long to count). */
  secrets?: readonly string[] | undefined;
  /**
   * Where lines go. @defaultValue stderr (fd 2), written synchronously so nothing is lost on exit;
   * in the human format, human lines on stderr, each once
   */
  destination?: pino.DestinationStream | undefined;
}

/** Field paths censored by pino wherever they appear (top level or one object down). */
const REDACT_PATHS = [
  'apiKey',
  '*.apiKey',
  'anthropicApiKey',
  '*.anthropicApiKey',
  'password',
  '*.password',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'headers["x-api-key"]',
  '*.headers["x-api-key"]',
];

const REDACTED = '[redacted]';
/** Anthropic keys look like `sk-ant-api03-…`. */
const ANTHROPIC_KEY = /sk-ant-[A-Za-z0-9_-]+/g;
/** The password part of a Redis URL: `redis://user:PASSWORD@host`, `rediss://:PASSWORD@host`. */
const REDIS_URL_PASSWORD = /(rediss?:\/\/[^:@/\s"]*:)[^@/\s"]+@/g;

let defaultLevel: string | undefined;

/** `json`: one JSON object per line (for log pipelines). `human`: one short line for a person, each once. */
export type LogFormat = 'json' | 'human';

let defaultFormat: LogFormat = 'json';

/**
 * The format of loggers created without a `destination` from now on. The `fleet` CLI sets `human`
 * unless `--log-json`, `FLEET_LOG_FORMAT=json` or `FLEET_LOG_LEVEL=debug`/`trace` asks for JSON;
 * a library user keeps JSON. @defaultValue `json`
 */
export function setLogFormat(format: LogFormat): void {
  defaultFormat = format;
}

/**
 * The level of loggers created without `level` when `FLEET_LOG_LEVEL` is unset, e.g. `warn` for
 * `fleet run`, whose stderr is a progress display.
 */
export function setDefaultLogLevel(level: string | undefined): void {
  defaultLevel = level;
}

/** `text` with every secret value and secret-shaped string replaced by `[redacted]`. */
function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join(REDACTED);
  return out.replace(ANTHROPIC_KEY, REDACTED).replace(REDIS_URL_PASSWORD, `$1${REDACTED}@`);
}

/**
 * A JSON logger for one component.
 *
 * Each line: `level` (label), `time` (ISO 8601), `name`, `pid`, `hostname`, `msg`, the fields passed,
 * and `trace_id` / `span_id` / `trace_flags` when a span is active.
 *
 * @example
 * const log = createLogger({ name: 'manager' });
 * log.info({ run_id: runId, phase }, 'phase enqueued');
 */
export function createLogger(options: LoggerOptions): FleetLogger {
  const secrets = [...(options.secrets ?? []), ...secretSettings()].filter((s) => s.length >= 6);
  const human = defaultFormat === 'human' && !options.destination;
  return pino(
    {
      name: options.name,
      level: options.level ?? logLevelSetting() ?? defaultLevel ?? (human ? 'warn' : 'info'),
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      mixin() {
        const span = trace.getSpan(context.active());
        if (!span) return {};
        const sc = span.spanContext();
        if (!isSpanContextValid(sc)) return {};
        return { trace_id: sc.traceId, span_id: sc.spanId, trace_flags: `0${sc.traceFlags.toString(16)}`.slice(-2) };
      },
      hooks: { streamWrite: (line) => scrub(line, secrets) },
    },
    options.destination ?? (human ? humanDestination : pino.destination({ dest: 2, sync: true })),
  );
}
