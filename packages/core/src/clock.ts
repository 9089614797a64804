/**
 * Time as an input: the {@link Clock} that deadlines, timeouts and graceful closes are read and
 * timed with, the {@link systemClock} that processes use, and the {@link TestClock} a test moves by
 * hand (as Temporal's time-skipping test environment does), so no test sleeps to see a timeout.
 */

/** Reads the time and runs timers. Every duration is in ms, every instant epoch ms. */
export interface Clock {
  /** The time now, epoch ms. */
  now(): number;
  /**
   * Call `fn` once, `ms` ms from now (`ms` below 0 counts as 0).
   * @returns a function that cancels the timer; calling it after `fn` ran does nothing.
   */
  setTimer(ms: number, fn: () => void): () => void;
}

/** The clock of the process: `Date.now` and `setTimeout`. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const timer = setTimeout(fn, Math.max(0, ms));
    return () => clearTimeout(timer);
  },
};

/**
 * Resolve with `work`'s outcome (`true`, settled either way) or `false` once `ms` ms passed on
 * `clock` first. `work` is not cancelled; a rejection of it is taken as settled, never thrown.
 *
 * @example
 * if (!(await settledWithin(worker.close(), 30_000))) log.warn('jobs still running were abandoned');
 */
export async function settledWithin(work: Promise<unknown>, ms: number, clock: Clock = systemClock): Promise<boolean> {
  let cancel: (() => void) | undefined;
  const timeout = new Promise<false>((resolve) => {
    cancel = clock.setTimer(ms, () => resolve(false));
  });
  try {
    return await Promise.race([work.then(() => true, () => true), timeout]);
  } finally {
    cancel?.();
  }
}

interface PendingTimer {
  due: number;
  fn: () => void;
  done: boolean;
  cancelReal: () => void;
}

/**
 * A clock a test moves by hand: real time plus an offset the test advances. The manager of a test
 * fleet reads its deadlines with it, so an approval with a one-day timeout expires as soon as the
 * test advances the clock by a day, without waiting; a worker host times its graceful close with it,
 * so a close that gives up on a stuck job is seen without waiting out the grace period.
 *
 * A timer fires when real time reaches it or when {@link advance} moves the clock past it, whichever
 * comes first, and only once. A clock made with `frozenAt` does not run with real time at all: it
 * reads `frozenAt` plus what was advanced, and its timers fire only on {@link advance} (for unit
 * tests of timer logic, where the real time a busy machine spends between two lines must not count).
 *
 * @example
 * const clock = new TestClock();
 * const manager = await startManager({ redisUrl, prefix, clock });
 * clock.advance(30_000); // an outbox lease of 30 s has passed
 */
export class TestClock implements Clock {
  #offsetMs = 0;
  readonly #timers = new Set<PendingTimer>();
  readonly #frozenAt: number | undefined;

  /** @param options.frozenAt - epoch ms the clock stands at until advanced; without it the clock runs with real time. */
  constructor(options: { frozenAt?: number } = {}) {
    this.#frozenAt = options.frozenAt;
  }

  /** Epoch ms: real time (or `frozenAt`) plus every {@link advance} so far. */
  now(): number {
    return (this.#frozenAt ?? Date.now()) + this.#offsetMs;
  }

  setTimer(ms: number, fn: () => void): () => void {
    const timer: PendingTimer = { due: this.now() + Math.max(0, ms), fn, done: false, cancelReal: () => undefined };
    if (this.#frozenAt === undefined) {
      const real = setTimeout(() => this.#fire(timer), Math.max(0, ms));
      timer.cancelReal = () => clearTimeout(real);
    }
    this.#timers.add(timer);
    return () => {
      timer.done = true;
      timer.cancelReal();
      this.#timers.delete(timer);
    };
  }

  /** Timers not yet fired or cancelled. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /**
   * Move the clock forward by `ms` milliseconds: timers due by then fire now, in due order
   * (deadlines due by then fire at the manager's next poll).
   * @throws RangeError for a negative or non-finite `ms` (time does not go back).
   */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`TestClock.advance: expected a duration in ms, at least 0 (got ${ms})`);
    this.#offsetMs += ms;
    const now = this.now();
    const due = [...this.#timers].filter((t) => t.due <= now).sort((a, b) => a.due - b.due);
    for (const t of due) this.#fire(t);
  }

  #fire(timer: PendingTimer): void {
    if (timer.done) return;
    timer.done = true;
    timer.cancelReal();
    this.#timers.delete(timer);
    timer.fn();
  }
}
