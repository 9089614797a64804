/**
 * Progress lines on stderr, drawn from a run's event stream: one line per phase start, retry and end,
 * with durations, so the same view works for a local run and for `fleet watch` of a remote one.
 */
import type { StoredRunEvent } from '@agentfleet/core';
import { say } from './shared.js';
import { LiveProgress } from './tty-progress.js';

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** The command that answers a waiting phase (the shapes `fleet run --interactive` sends). */
export function answerCommand(runId: string, event: string): string {
  const data = event === 'approval' ? '{"approved": true, "comment": "looks good"}' : event === 'budget' ? '{"add_usd": 2}' : '{"answers": {"<question>": "<answer>"}}';
  return `fleet event ${runId} ${event} --data '${data}'`;
}

/**
 * One human line for an event, or undefined for events not worth a line.
 *
 * @param runId - the run's id, to print how to answer a waiting phase.
 */
export function progressLine(e: StoredRunEvent['event'], runId?: string): string | undefined {
  switch (e.type) {
    case 'run_created':
      return `run created: workflow ${e.workflow} v${e.version}`;
    case 'run_started':
      return undefined;
    case 'run_queued':
      return `run queued: concurrency key "${e.key}" has ${e.limit} run(s) active; position ${e.position} in its queue`;
    case 'phase_queued':
      return `  … ${e.phase} (${e.agent}) queued${e.iteration > 1 ? ` (iteration ${e.iteration})` : ''}`;
    case 'phase_started':
      return `  ▶ ${e.phase} (${e.agent}) started${e.attempt > 1 ? `, attempt ${e.attempt}` : ''}`;
    case 'phase_retry':
      return `  ↻ ${e.phase} attempt ${e.attempt} failed, retrying${e.delay_ms !== undefined ? ` in ${seconds(e.delay_ms)}` : ''}: ${e.error.code}: ${e.error.message}`;
    case 'phase_completed':
      return `  ✓ ${e.phase} completed in ${seconds(e.duration_ms)}`;
    case 'phase_failed':
      return `  ✗ ${e.phase} failed: ${e.error.code}: ${e.error.message}`;
    case 'phase_skipped':
      return `  - ${e.phase} skipped: ${e.reason}`;
    case 'phase_cancelled':
      return `  ■ ${e.phase} cancelled: ${e.reason}`;
    case 'run_finished':
      return `run ${e.status} in ${seconds(e.duration_ms)}`;
    case 'phase_waiting':
      return `  ⏸ ${e.phase} waiting for "${e.event}"${e.prompt !== undefined ? `: ${typeof e.prompt === 'string' ? e.prompt : JSON.stringify(e.prompt)}` : ''}${runId && e.event !== 'batch' ? `\n    answer: ${answerCommand(runId, e.event)}` : ''}`;
    case 'step_action':
      return `  ↪ ${e.phase}: ${e.action}${e.target ? ` → ${e.target}` : ''}${e.note ? ` (${e.note})` : ''}`;
    case 'external_event':
      return `  ✉ event "${e.event}" received`;
    case 'run_resumed':
      return 'run resumed';
    case 'rate_limited':
      return `  ⧗ ${e.phase} waiting ${(e.wait_ms / 1000).toFixed(1)}s for the ${e.model} rate limit (${e.limit})`;
    case 'end_action':
      return `  → end action ${e.action}${e.target ? ` ${e.target}` : ''}: ${e.outcome} (attempt ${e.attempt})`;
    case 'rerun_started':
      return `  ↺ rerun ${e.new_run_id} started from "${e.from}"`;
    case 'fallback_failed':
      return `  ✗ fallback workflow ${e.workflow} could not start: ${e.error}`;
    case 'fallback_started':
      return `  ↪ fallback run ${e.fallback_run_id} started (${e.workflow})`;
    case 'role_unserved':
      return `  ! ${e.phase} is queued but ${e.message}`;
    case 'budget_held':
      return `  ⧗ ${e.phase} waits for other phases' calls in flight to settle the ${e.limit} budget they hold (${e.reserved} of ${e.max})`;
    case 'tool_call':
      return `    ⚙ ${e.phase} called ${e.tool} (${e.duration_ms} ms, ${e.status === 'ok' ? `${e.result_bytes} bytes` : `error: ${e.error ?? ''}`})`;
    case 'cancel_ignored':
      return `  ! cancel ignored: ${e.message}`;
    case 'event_rejected':
      return `  ! event ${e.event}${e.phase ? ` of ${e.phase}` : ''} refused: ${e.error.code}: ${e.error.message}`;
  }
}

/** Draws a followed run's progress on stderr. */
export interface ProgressDisplay {
  /** Draw one run event. */
  event(e: StoredRunEvent['event']): void;
  /** Print one line of the command's own (a note, a question), kept apart from the live status. */
  line(text: string): void;
  /** Stop drawing; a live status is cleared. Idempotent. */
  close(): void;
}

export interface ProgressDisplayOptions {
  /** The run answers go to (shown with a waiting phase); changes when `fleet run` follows a fallback. */
  runId: () => string | undefined;
  /**
   * Draw a live status (spinner and elapsed time per running phase) under the lines: for a terminal.
   * @defaultValue false: plain lines only
   */
  live?: boolean;
}

/** Whether stderr is a terminal that gets the live display: not with `--json`, not with TERM=dumb. */
export function wantsLiveProgress(json: boolean): boolean {
  return !json && process.stderr.isTTY && process.env.TERM !== 'dumb';
}

/** The progress display of a followed run: plain lines (progressLine), with a live status on a terminal. */
export function progressDisplay(options: ProgressDisplayOptions): ProgressDisplay {
  if (options.live) return new LiveProgress((e) => progressLine(e, options.runId()));
  return {
    event(e) {
      const text = progressLine(e, options.runId());
      if (text) say(text);
    },
    line: say,
    close: () => undefined,
  };
}
