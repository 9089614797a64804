/**
 * A task the manager runs every so often (the deadline and outbox poll, the check for unserved
 * roles, the pruning of the run index): one run at a time, a tick that finds the previous run still
 * going is skipped, and a failure goes to `onError` instead of stopping the ticks.
 */

/** A running {@link startPeriodic} task. */
export interface Periodic {
  /** Stop ticking and wait for a run in progress to end. */
  stop(): Promise<void>;
}

/**
 * Run `task` every `everyMs` ms (the first run after `everyMs`) until {@link Periodic.stop}.
 *
 * @param options.unref - do not keep the process alive for this timer alone. @defaultValue false
 */
export function startPeriodic(everyMs: number, task: () => Promise<unknown>, onError: (err: Error) => void, options: { unref?: boolean } = {}): Periodic {
  let running: Promise<unknown> | undefined;
  let stopped = false;
  const timer = setInterval(() => {
    if (running || stopped) return;
    running = task()
      .catch((err: unknown) => onError(err as Error))
      .finally(() => (running = undefined));
  }, everyMs);
  if (options.unref) timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
