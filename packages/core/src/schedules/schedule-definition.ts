/**
 * What a schedule is: the input a user writes (CLI flags, the HTTP body) and the compiled definition
 * the store keeps and the manager registers as a BullMQ job scheduler.
 *
 * Input (snake_case, durations as text) → {@link compileSchedule} → {@link ScheduleDefinition}
 * (durations in ms, cron checked with cron-parser, time zone checked with `Intl`). Runtime code never
 * sees raw input.
 */
import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';
import { didYouMean } from '../did-you-mean.js';
import { FleetError, type ValidationIssue } from '../errors.js';
import { MAX_REQUIREMENTS_BYTES } from '../client.js';
import { NAME_PATTERN } from '../workflow/schema.js';

/** What happens to a fire while the schedule's previous run is still going. */
export const OVERLAP_POLICIES = ['skip', 'allow', 'cancel_previous'] as const;
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];

/** What happens to fires that came due while no manager ran (taken later than `misfire_grace`). */
export const CATCH_UP_POLICIES = ['none', 'latest'] as const;
export type CatchUpPolicy = (typeof CATCH_UP_POLICIES)[number];

/** Shortest `every` accepted, ms. */
export const MIN_EVERY_MS = 1000;
/** @defaultValue of `misfire_grace`, ms. */
export const DEFAULT_MISFIRE_GRACE_MS = 60_000;

/** The fields of a schedule, for "did you mean" on an unknown one. */
export const SCHEDULE_FIELDS = ['name', 'workflow', 'cron', 'every', 'tz', 'requirements', 'variables', 'overlap', 'catch_up', 'misfire_grace'] as const;

const DURATION = /^\s*(\d+)\s*(ms|s|m|h|d)\s*$/;
const DURATION_UNITS_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * A schedule as a user writes it (the HTTP body of `POST /api/schedules`; `fleet schedules add`
 * builds the same object from its flags). Exactly one of `cron` and `every`.
 */
export const ScheduleInputSchema = z.strictObject(
  {
    name: z.string().regex(NAME_PATTERN, 'name must start with a letter and use only letters, digits, "_" or "-" (at most 64)').describe('the schedule name, unique in the fleet'),
    workflow: z.string().min(1, 'workflow is the name of a registered template or built-in workflow').describe('a template or built-in workflow name, resolved at each fire'),
    cron: z
      .string()
      .optional()
      .describe('a cron expression: 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), e.g. "0 2 * * *"'),
    every: z.string().optional().describe('a fixed interval instead of `cron`: e.g. "1s", "15m", "6h" (at least 1s)'),
    tz: z.string().default('UTC').describe('IANA time zone the cron expression is read in, e.g. Europe/Berlin (default UTC)'),
    requirements: z.string({ error: 'requirements must be a string: what each run should do' }).describe('the requirements every run of the schedule gets'),
    variables: z.record(z.string(), z.string(), { error: 'variables must map names to strings' }).default({}),
    overlap: z.enum(OVERLAP_POLICIES).default('skip').describe("when the schedule's previous run is still going: skip this fire, allow a second run, or cancel_previous and start"),
    catch_up: z.enum(CATCH_UP_POLICIES).default('latest').describe('fires missed while no manager ran: none drops them, latest starts one run for the most recent'),
    misfire_grace: z.string().default('60s').describe('a fire taken later than this after its time counts as missed (catch_up applies)'),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((k) => `unknown field "${k}"${didYouMean(k, [...SCHEDULE_FIELDS])}; fields: ${SCHEDULE_FIELDS.join(', ')}`).join('; ')
        : undefined,
  },
);
export type ScheduleInput = z.input<typeof ScheduleInputSchema>;

/** A compiled schedule: what the store keeps (JSON) and the manager registers. */
export interface ScheduleDefinition {
  name: string;
  workflow: string;
  /** Exactly one of `cron` and `everyMs`. */
  cron: string | null;
  /** Interval, ms. */
  everyMs: number | null;
  /** IANA time zone the cron expression is read in. */
  tz: string;
  requirements: string;
  variables: Record<string, string>;
  overlap: OverlapPolicy;
  catchUp: CatchUpPolicy;
  /** A fire taken later than this after its time is missed, ms. */
  misfireGraceMs: number;
}

/**
 * Validate and compile a schedule. Every problem is reported at once, each naming its field and the fix.
 *
 * @throws FleetError `INVALID_INPUT` with `details.issues` (`[{path, message}]`, paths such as `cron`).
 * @see https://github.com/harrisiirak/cron-parser for the cron syntax (the one BullMQ uses).
 */
export function compileSchedule(raw: unknown): ScheduleDefinition {
  const parsed = ScheduleInputSchema.safeParse(raw);
  const issues: ValidationIssue[] = [];
  if (!parsed.success) {
    for (const i of parsed.error.issues) issues.push({ path: i.path.join('.') || '(schedule)', message: i.message });
    throw invalid(issues);
  }
  const s = parsed.data;
  if (s.cron === undefined && s.every === undefined) issues.push({ path: 'cron', message: 'give either cron (e.g. "0 2 * * *") or every (e.g. "15m")' });
  if (s.cron !== undefined && s.every !== undefined) issues.push({ path: 'every', message: 'give either cron or every, not both' });
  if (!isTimeZone(s.tz)) issues.push({ path: 'tz', message: `"${s.tz}" is not an IANA time zone; write e.g. UTC, Europe/Berlin or America/New_York` });
  if (s.cron !== undefined && isTimeZone(s.tz)) {
    const problem = cronProblem(s.cron, s.tz);
    if (problem) issues.push({ path: 'cron', message: problem });
  }
  let everyMs: number | null = null;
  if (s.every !== undefined) {
    const ms = durationMs(s.every);
    everyMs = ms ?? null;
    if (ms === undefined) issues.push({ path: 'every', message: `"${s.every}" is not an interval; write e.g. 1s, 15m, 6h or 1d` });
    else if (ms < MIN_EVERY_MS) issues.push({ path: 'every', message: `"${s.every}" is shorter than the shortest interval, 1s` });
  }
  const misfireGraceMs = durationMs(s.misfire_grace);
  if (misfireGraceMs === undefined) issues.push({ path: 'misfire_grace', message: `"${s.misfire_grace}" is not a duration; write e.g. 60s, 10m or 1h` });
  if (s.requirements.trim() === '') issues.push({ path: 'requirements', message: 'requirements are empty; say what each run should do' });
  else if (Buffer.byteLength(s.requirements, 'utf8') > MAX_REQUIREMENTS_BYTES) issues.push({ path: 'requirements', message: `requirements are larger than ${MAX_REQUIREMENTS_BYTES} bytes` });
  if (issues.length > 0) throw invalid(issues);
  return {
    name: s.name,
    workflow: s.workflow,
    cron: s.cron?.trim() ?? null,
    everyMs,
    tz: s.tz,
    requirements: s.requirements,
    variables: s.variables,
    overlap: s.overlap,
    catchUp: s.catch_up,
    misfireGraceMs: misfireGraceMs ?? DEFAULT_MISFIRE_GRACE_MS,
  };
}

/** The definition in the input's shape (what `GET /api/schedules/:name` and `fleet schedules show` print). */
export function scheduleToInput(d: ScheduleDefinition): z.output<typeof ScheduleInputSchema> {
  return {
    name: d.name,
    workflow: d.workflow,
    ...(d.cron !== null ? { cron: d.cron } : {}),
    ...(d.everyMs !== null ? { every: formatDuration(d.everyMs) } : {}),
    tz: d.tz,
    requirements: d.requirements,
    variables: d.variables,
    overlap: d.overlap,
    catch_up: d.catchUp,
    misfire_grace: formatDuration(d.misfireGraceMs),
  };
}

/**
 * The next `count` fire times after `afterMs` (epoch ms), as the BullMQ job scheduler computes them
 * for a cron (cron-parser, in the schedule's time zone); for `every`, the aligned slots BullMQ uses
 * for a new scheduler (multiples of the interval).
 */
export function nextFireTimes(d: ScheduleDefinition, afterMs: number, count: number): number[] {
  const every = d.everyMs;
  if (every !== null) {
    const first = Math.floor(afterMs / every) * every + every;
    return Array.from({ length: count }, (_, i) => first + i * every);
  }
  const it = CronExpressionParser.parse(d.cron ?? '', { tz: d.tz, currentDate: new Date(afterMs) });
  return Array.from({ length: count }, () => it.next().getTime());
}

/**
 * The latest fire time at or before `nowMs` of a schedule whose fire at `slotMs` is taken late: the
 * fire `catch_up: latest` starts a run for. For `every`, the slots go on from `slotMs`.
 */
export function latestFireTime(d: ScheduleDefinition, slotMs: number, nowMs: number): number {
  if (nowMs <= slotMs) return slotMs;
  if (d.everyMs !== null) return slotMs + Math.floor((nowMs - slotMs) / d.everyMs) * d.everyMs;
  const it = CronExpressionParser.parse(d.cron ?? '', { tz: d.tz, currentDate: new Date(nowMs + 1) });
  return Math.max(slotMs, it.prev().getTime());
}

/** Why a cron expression is refused, or undefined when cron-parser (BullMQ's parser) accepts it. */
function cronProblem(cron: string, tz: string): string | undefined {
  const fields = cron.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) {
    return `"${cron}" has ${fields.length} field${fields.length === 1 ? '' : 's'}; write 5 (minute hour day-of-month month day-of-week, e.g. "0 2 * * *" for 02:00 every day) or 6 with seconds first (e.g. "*/10 * * * * *")`;
  }
  try {
    CronExpressionParser.parse(cron, { tz, strict: false }).next();
    return undefined;
  } catch (err) {
    return `"${cron}" is not a cron expression (${(err as Error).message}); write e.g. "0 2 * * *" (02:00 every day) or "*/15 * * * *" (every 15 minutes)`;
  }
}

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

function durationMs(text: string): number | undefined {
  const m = DURATION.exec(text);
  return m ? Number(m[1]) * DURATION_UNITS_MS[m[2] as keyof typeof DURATION_UNITS_MS] : undefined;
}

/** 90000 → "90s", 3600000 → "1h": the largest unit that divides the duration. */
function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) if (ms % size === 0 && ms >= size) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

function invalid(issues: ValidationIssue[]): FleetError {
  return new FleetError('INVALID_INPUT', issues.map((i) => `${i.path}: ${i.message}`).join('\n'), { details: { issues } });
}
