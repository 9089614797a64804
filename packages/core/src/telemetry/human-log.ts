/**
 * Log lines for a person at a terminal: the `fleet` CLI's default. Each JSON log line pino writes
 * is turned into one short line (`warning: <msg> (run …, phase …): <error>`), and a line already
 * printed by this process is not printed again, so one problem seen by nine components (the
 * manager, each role's pool, each BullMQ connection) is said once. `--log-json` or
 * `FLEET_LOG_LEVEL=debug` keep the JSON lines instead (see logger.ts).
 *
 * Libraries that warn through `console.warn` (BullMQ warns once per Redis connection about the
 * eviction policy) are routed through the same path by {@link routeConsoleWarnings}.
 */
import { format } from 'node:util';

/** Distinct lines remembered for de-duplication; the oldest is forgotten beyond this many. */
const REMEMBERED_LINES = 1000;

/** What Redis needs, in one sentence shared by the manager's check and BullMQ's warning. */
export function evictionPolicyWarning(policy: string): string {
  return `Redis maxmemory-policy is "${policy}"; set it to "noeviction" (redis-server --maxmemory-policy noeviction), or runs and jobs may be evicted`;
}

/** BullMQ's own wording of the same warning (`RedisConnection`, printed once per connection). */
const BULLMQ_EVICTION = /^IMPORTANT! Eviction policy is (\S+)\. It should be "noeviction"/;

/** Prints each distinct line once per process. */
export class OnceWriter {
  private readonly seen = new Set<string>();
  private redirected: ((line: string) => void) | undefined;

  constructor(private readonly write: (line: string) => void) {}

  /**
   * Send lines to `write` instead until called again with undefined: a live display that redraws
   * stderr prints them above its status block.
   */
  redirect(write: ((line: string) => void) | undefined): void {
    this.redirected = write;
  }

  /** Print `line` unless this writer printed it before; true when printed. */
  print(line: string): boolean {
    if (this.seen.has(line)) return false;
    this.seen.add(line);
    if (this.seen.size > REMEMBERED_LINES) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    (this.redirected ?? this.write)(line);
    return true;
  }
}

/** The process's human stderr: every human log line and routed warning goes through it. */
export const humanStderr = new OnceWriter((line) => process.stderr.write(`${line}\n`));

/** `: CODE: message` of an `error` (a serialized FleetError) or `err` (pino's serialized Error, or a string) field. */
function errorText(entry: Record<string, unknown>): string {
  const e = entry.error ?? entry.err;
  if (typeof e === 'string') return `: ${e}`;
  if (e && typeof e === 'object') {
    const { code, message } = e as { code?: unknown; message?: unknown };
    const text = typeof message === 'string' ? message : '';
    if (typeof code === 'string' && text) return `: ${code}: ${text}`;
    if (text) return `: ${text}`;
  }
  return '';
}

/**
 * One human line for one pino JSON line: `warning: …` for warn, `error: …` for error and fatal,
 * `<name>: …` below; the run, phase and attempt in parentheses when the entry has them.
 * A line that is not JSON is returned as it is.
 *
 * @example
 * humanLogLine('{"level":"warn","name":"agents","run_id":"r1","phase":"plan","attempt":2,"msg":"phase attempt failed","error":{"code":"PROVIDER_OVERLOADED","message":"529"}}')
 * // 'warning: phase attempt failed (run r1, phase plan, attempt 2): PROVIDER_OVERLOADED: 529'
 */
export function humanLogLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.trimEnd();
  }
  const level = typeof entry.level === 'string' ? entry.level : 'info';
  const lead = level === 'warn' ? 'warning' : level === 'error' || level === 'fatal' ? 'error' : typeof entry.name === 'string' ? entry.name : 'log';
  const where = [
    typeof entry.run_id === 'string' ? `run ${entry.run_id}` : undefined,
    typeof entry.phase === 'string' ? `phase ${entry.phase}` : undefined,
    typeof entry.attempt === 'number' ? `attempt ${entry.attempt}` : undefined,
  ].filter((s) => s !== undefined);
  const msg = typeof entry.msg === 'string' ? entry.msg : '';
  const error = errorText(entry);
  // `log.error({ err }, err.message)` would say the message twice.
  return `${lead}: ${msg}${where.length > 0 ? ` (${where.join(', ')})` : ''}${error === `: ${msg}` ? '' : error}`;
}

/** A pino destination that writes each line through {@link humanStderr} as {@link humanLogLine} renders it. */
export const humanDestination = {
  write(line: string): void {
    humanStderr.print(humanLogLine(line));
  },
};

let routed: typeof console.warn | undefined;

/**
 * Route `console.warn` through {@link humanStderr} as `warning: …` lines, each printed once; BullMQ's
 * eviction-policy warning is worded as {@link evictionPolicyWarning}, so it merges with the manager's.
 * Idempotent. Returns a function that restores the previous `console.warn`.
 *
 * @param sink - where a routed warning goes. @defaultValue `humanStderr.print('warning: …')`
 */
export function routeConsoleWarnings(sink: (message: string) => void = (m) => void humanStderr.print(`warning: ${m}`)): () => void {
  const previous = routed ?? console.warn;
  routed = previous;
  const once = new OnceWriter(sink);
  console.warn = (...args: unknown[]) => {
    const text = format(...args);
    const eviction = BULLMQ_EVICTION.exec(text);
    once.print(eviction ? evictionPolicyWarning(eviction[1] ?? 'unknown') : text);
  };
  return () => {
    console.warn = previous;
    routed = undefined;
  };
}
