/**
 * A clock a test moves by hand: real time plus an offset the test advances. The manager of a test
 * fleet reads its deadlines with it, so an approval with a one-day timeout expires as soon as the
 * test advances the clock by a day, without waiting.
 */
export class TestClock {
  #offsetMs = 0;

  /** Epoch ms: real time plus every {@link advance} so far. */
  now(): number {
    return Date.now() + this.#offsetMs;
  }

  /**
   * Move the clock forward by `ms` milliseconds (deadlines due by then fire at the manager's next poll).
   * @throws RangeError for a negative or non-finite `ms` (time does not go back).
   */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`TestClock.advance: expected a duration in ms, at least 0 (got ${ms})`);
    this.#offsetMs += ms;
  }
}
