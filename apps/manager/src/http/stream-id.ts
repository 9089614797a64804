/**
 * Redis Stream ids as the HTTP API accepts them (`Last-Event-ID`, `last_event_id`): `<ms>` or
 * `<ms>-<seq>`, each part an unsigned 64-bit integer, as Redis defines them. A part beyond 2^64 - 1
 * would make Redis refuse the read ("Invalid stream ID"), so it is a 400 naming the field here instead.
 *
 * @see https://redis.io/docs/latest/develop/data-types/streams/#entry-ids
 */
import { z } from 'zod';

/** Largest value of each part of a stream id (unsigned 64-bit). */
export const STREAM_ID_PART_MAX = 18446744073709551615n;

/** Why `id` is not a stream id, or undefined when it is one. */
export function streamIdProblem(id: string): string | undefined {
  const m = /^(\d{1,20})(?:-(\d{1,20}))?$/.exec(id);
  if (!m) return 'is a stream id such as 1700000000000-0';
  for (const part of [m[1], m[2]]) {
    if (part !== undefined && BigInt(part) > STREAM_ID_PART_MAX) return `is out of range: each part of a stream id is at most ${STREAM_ID_PART_MAX}`;
  }
  return undefined;
}

/** A zod schema for a stream id given as `label` (named in the 400 answer). */
export function streamIdSchema(label: string) {
  return z.string().superRefine((id, ctx) => {
    const problem = streamIdProblem(id);
    if (problem) ctx.addIssue({ code: 'custom', message: `${label} ${problem}` });
  });
}
