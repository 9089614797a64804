import { describe, expect, it } from 'vitest';
import { FleetError } from '../errors.js';
import { compileSchedule, latestFireTime, nextFireTimes, scheduleToInput } from './schedule-definition.js';

const base = { name: 'nightly-review', workflow: 'design-review', requirements: 'Review the day' };

function issuesOf(raw: unknown): Array<{ path: string; message: string }> {
  try {
    compileSchedule(raw);
  } catch (err) {
    if (err instanceof FleetError && err.code === 'INVALID_INPUT') return err.details?.issues as Array<{ path: string; message: string }>;
    throw err;
  }
  throw new Error('compileSchedule accepted it');
}

describe('compileSchedule', () => {
  it('compiles a cron schedule with its defaults', () => {
    const d = compileSchedule({ ...base, cron: '0 2 * * *', tz: 'Europe/Berlin', variables: { team: 'core' } });
    expect(d).toEqual({
      name: 'nightly-review',
      workflow: 'design-review',
      cron: '0 2 * * *',
      everyMs: null,
      tz: 'Europe/Berlin',
      requirements: 'Review the day',
      variables: { team: 'core' },
      overlap: 'skip',
      catchUp: 'latest',
      misfireGraceMs: 60_000,
    });
    expect(scheduleToInput(d)).toMatchObject({ cron: '0 2 * * *', misfire_grace: '1m', catch_up: 'latest' });
  });

  it('compiles an interval to ms', () => {
    expect(compileSchedule({ ...base, every: '15m', overlap: 'cancel_previous', catch_up: 'none', misfire_grace: '10s' })).toMatchObject({
      cron: null,
      everyMs: 900_000,
      overlap: 'cancel_previous',
      catchUp: 'none',
      misfireGraceMs: 10_000,
    });
  });

  it('names the field and the fix for each problem', () => {
    expect(issuesOf({ ...base })).toEqual([{ path: 'cron', message: 'give either cron (e.g. "0 2 * * *") or every (e.g. "15m")' }]);
    expect(issuesOf({ ...base, cron: '0 2 * * *', every: '1h' })[0]?.path).toBe('every');
    expect(issuesOf({ ...base, cron: '0 2 * *' })[0]?.message).toContain('has 4 fields; write 5 (minute hour day-of-month month day-of-week');
    expect(issuesOf({ ...base, cron: '61 * * * *' })[0]?.message).toMatch(/^"61 \* \* \* \*" is not a cron expression \(.*59.*\); write e\.g\./);
    expect(issuesOf({ ...base, cron: '0 2 * * *', tz: 'Mars/Olympus' })).toEqual([
      { path: 'tz', message: '"Mars/Olympus" is not an IANA time zone; write e.g. UTC, Europe/Berlin or America/New_York' },
    ]);
    expect(issuesOf({ ...base, every: '500ms' })[0]?.message).toContain('shorter than the shortest interval, 1s');
    expect(issuesOf({ ...base, every: 'often' })[0]?.message).toContain('write e.g. 1s, 15m');
    expect(issuesOf({ ...base, every: '1h', requirements: '  ' })[0]?.path).toBe('requirements');
    expect(issuesOf({ ...base, every: '1h', overlap: 'queue' })[0]?.path).toBe('overlap');
    expect(issuesOf({ ...base, every: '1h', cath_up: 'none' })[0]?.message).toContain('unknown field "cath_up" (did you mean "catch_up"?)');
  });
});

describe('fire times', () => {
  it('reads a cron in its time zone, across a daylight saving change', () => {
    const d = compileSchedule({ ...base, cron: '0 2 * * *', tz: 'Europe/Berlin' });
    // 2026-03-28 and -29: Berlin moves from UTC+1 to UTC+2 on the 29th at 02:00 (which does not exist that day).
    const times = nextFireTimes(d, Date.parse('2026-03-27T12:00:00Z'), 3).map((t) => new Date(t).toISOString());
    expect(times[0]).toBe('2026-03-28T01:00:00.000Z');
    expect(times[2]).toBe('2026-03-30T00:00:00.000Z');
  });

  it('catches up to the latest fire time that passed', () => {
    const hourly = compileSchedule({ ...base, cron: '0 * * * *' });
    const slot = Date.parse('2026-12-01T02:00:00Z');
    expect(latestFireTime(hourly, slot, Date.parse('2026-12-01T05:30:00Z'))).toBe(Date.parse('2026-12-01T05:00:00Z'));
    expect(latestFireTime(hourly, slot, slot)).toBe(slot);
    const every = compileSchedule({ ...base, every: '15m' });
    expect(latestFireTime(every, 1000, 1000 + 3 * 900_000 + 5)).toBe(1000 + 3 * 900_000);
  });
});
