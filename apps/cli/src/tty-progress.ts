/**
 * The live progress display for a terminal: the same lines as the plain display, kept in the
 * scrollback, and under them a status block redrawn in place (log-update) with one row per phase
 * in flight: a spinner and the time since it started while it runs, the time since it was queued
 * while it waits for a worker, and what it waits for while it waits for an event.
 */
import { humanStderr, type StoredRunEvent } from '@agentfleet/core';
import { createLogUpdate } from 'log-update';

/** Braille spinner frames (the `dots` spinner of cli-spinners). */
const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/** How often the status block is redrawn, ms. */
const REDRAW_MS = 100;

type RunEvent = StoredRunEvent['event'];

interface InFlight {
  agent: string;
  state: 'queued' | 'running' | 'waiting';
  /** Epoch ms the current state began, by this process's clock. */
  since: number;
  note?: string;
}

export interface LiveProgressOptions {
  /** Where to draw. @defaultValue process.stderr */
  stream?: NodeJS.WriteStream;
  /** The clock, epoch ms. @defaultValue Date.now */
  now?: () => number;
  /** Redraw on a timer; off for tests that call {@link LiveProgress.render}. @defaultValue true */
  timer?: boolean;
}

/**
 * `stream` with a usable size: a terminal that reports 0 columns or rows (a pseudo-terminal nobody
 * sized, under `script` or a CI runner) counts as 80 × 24, instead of wrapping every character on
 * its own line and clipping the status block away.
 */
function sized(stream: NodeJS.WriteStream): NodeJS.WritableStream {
  return Object.assign(Object.create(stream) as NodeJS.WriteStream, {
    write: stream.write.bind(stream),
    get columns() {
      return stream.columns || 80;
    },
    get rows() {
      return stream.rows || 24;
    },
  });
}

/** Seconds with one decimal: `12.3s`. */
function elapsed(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(1)}s`;
}

/**
 * A live display of one followed run (and the runs it is followed into, such as a fallback).
 *
 * @param lineOf - the plain line of an event (progress.ts `progressLine`), printed above the status block.
 */
export class LiveProgress {
  private readonly phases = new Map<string, InFlight>();
  private readonly log: ReturnType<typeof createLogUpdate>;
  private readonly now: () => number;
  private readonly timer: NodeJS.Timeout | undefined;
  private frame = 0;
  private closed = false;

  constructor(
    private readonly lineOf: (e: RunEvent) => string | undefined,
    options: LiveProgressOptions = {},
  ) {
    this.log = createLogUpdate(sized(options.stream ?? process.stderr), { showCursor: false });
    this.now = options.now ?? Date.now;
    // Warnings printed while the display runs go above the status block, not through it.
    humanStderr.redirect((line) => this.line(line));
    if (options.timer ?? true) {
      this.timer = setInterval(() => this.render(), REDRAW_MS);
      this.timer.unref();
    }
  }

  event(e: RunEvent): void {
    if (this.closed) return;
    this.track(e);
    const text = this.lineOf(e);
    if (text) this.log.persist(text);
    this.render();
  }

  line(text: string): void {
    if (this.closed) return;
    this.log.persist(text);
    this.render();
  }

  /** Redraw the status block: one row per phase in flight. */
  render(): void {
    if (this.closed) return;
    this.frame = (this.frame + 1) % FRAMES.length;
    const now = this.now();
    const rows = [...this.phases].map(([name, p]) => {
      switch (p.state) {
        case 'running':
          return `  ${FRAMES[this.frame]} ${name} (${p.agent}) running ${elapsed(now - p.since)}`;
        case 'queued':
          return `  … ${name} (${p.agent}) queued ${elapsed(now - p.since)}`;
        case 'waiting':
          return `  ⏸ ${name} waiting ${elapsed(now - p.since)}${p.note ? ` for "${p.note}"` : ''}`;
      }
    });
    if (rows.length === 0) this.log.clear();
    else this.log(rows.join('\n'));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    humanStderr.redirect(undefined);
    clearInterval(this.timer);
    this.log.clear();
    this.log.done();
  }

  /** The phases in flight after `e`. */
  private track(e: RunEvent): void {
    const now = this.now();
    switch (e.type) {
      case 'phase_queued':
        this.phases.set(e.phase, { agent: e.agent, state: 'queued', since: now });
        return;
      case 'phase_started':
        this.phases.set(e.phase, { agent: e.agent, state: 'running', since: now });
        return;
      case 'phase_waiting':
        this.phases.set(e.phase, { agent: this.phases.get(e.phase)?.agent ?? '', state: 'waiting', since: now, note: e.event });
        return;
      case 'phase_completed':
      case 'phase_failed':
      case 'phase_skipped':
      case 'phase_cancelled':
        this.phases.delete(e.phase);
        return;
      case 'run_finished':
        this.phases.clear();
        return;
      default:
        return;
    }
  }
}
