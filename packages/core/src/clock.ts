/**
 * The time, as the code that computes deadlines, leases and start-by times reads it. Production code
 * takes a {@link Clock} in its options and defaults to {@link systemClock}; a test passes a
 * {@link TestClock} and moves it forward instead of waiting.
 */

/** A source of the current time. */
export interface Clock {
  /** The current time, epoch ms. */
  now(): number;
}

/** The machine's clock (`Date.now()`). */
export const systemClock: Clock = { now: () => Date.now() };

/**
 * A clock a test moves by hand: real time plus an offset the test advances. Whatever reads its
 * deadlines and leases from it (the manager, a client, a run driver) sees them come due as soon as
 * the test advances it past them: an approval with a one-day timeout expires after
 * `clock.advance(24 * 3600_000)`, without waiting.
 *
 * @example
 * const clock = new TestClock();
 * const manager = await startManager({ redisUrl, prefix, clock });
 * clock.advance(30_000); // an outbox lease of 30 s has passed
 */
export class TestClock implements Clock {
  #offsetMs = 0;

  /** Epoch ms: real time plus every {@link advance} so far. */
  now(): number {
    return Date.now() + this.#offsetMs;
  }

  /**
   * Move the clock forward by `ms` milliseconds (what comes due by then is found at the reader's next look).
   * @throws RangeError for a negative or non-finite `ms` (time does not go back).
   */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`TestClock.advance: expected a duration in ms, at least 0 (got ${ms})`);
    this.#offsetMs += ms;
  }
}
