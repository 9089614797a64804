/**
 * The run's timeline (a Gantt chart) from its event log: per phase, the queue wait before each
 * iteration (hatched), every attempt (a bar), and the gaps between them (retry backoff). An
 * attempt's outcome is told by the bar's pattern as well as its colour (solid completed, vertical
 * stripes running, horizontal stripes retried, crossed failed, outlined cancelled, as the legend
 * says), and as text (each bar has an accessible name and a title).
 */
import type { RunEvent } from './api.js';
import { duration } from './format.js';

export interface Span {
  kind: 'wait' | 'attempt';
  start: number;
  end: number | undefined;
  label: string;
  outcome: string;
}

/** Spans per phase, in the order phases first appear in the log. Pure. */
export function timelineOf(events: readonly RunEvent[]): Map<string, Span[]> {
  const rows = new Map<string, Span[]>();
  const open = new Map<string, Span>();
  const queuedAt = new Map<string, number>();
  for (const e of events) {
    const d = e.data;
    const phase = typeof d.phase === 'string' ? d.phase : undefined;
    if (!phase || d.at === undefined) continue;
    if (!rows.has(phase)) rows.set(phase, []);
    const row = rows.get(phase) as Span[];
    const close = (outcome: string) => {
      const s = open.get(phase);
      if (!s) return;
      s.end = d.at;
      s.outcome = outcome;
      open.delete(phase);
    };
    switch (d.type) {
      case 'phase_queued':
        queuedAt.set(phase, d.at);
        break;
      case 'phase_started': {
        const q = queuedAt.get(phase);
        if (q !== undefined && q < d.at) row.push({ kind: 'wait', start: q, end: d.at, label: `${phase} waited in the queue`, outcome: 'queued' });
        queuedAt.delete(phase);
        const span: Span = { kind: 'attempt', start: d.at, end: undefined, label: `${phase} iteration ${Number(d.iteration ?? 1)} attempt ${Number(d.attempt ?? 1)}`, outcome: 'running' };
        row.push(span);
        open.set(phase, span);
        break;
      }
      case 'phase_retry':
        close(`retried after ${(d.error as { code?: string } | undefined)?.code ?? 'an error'}`);
        break;
      case 'phase_completed':
        close('completed');
        break;
      case 'phase_failed':
        close(`failed: ${(d.error as { code?: string } | undefined)?.code ?? 'error'}`);
        break;
      case 'phase_cancelled':
        close('cancelled');
        break;
      default:
        break;
    }
  }
  return rows;
}

export function Timeline({ events, now }: { events: readonly RunEvent[]; now: number }) {
  const rows = timelineOf(events);
  const spans = [...rows.values()].flat();
  if (spans.length === 0) return <p className="muted">No phase has started yet.</p>;
  const t0 = Math.min(...spans.map((s) => s.start));
  const t1 = Math.max(...spans.map((s) => s.end ?? now), t0 + 1);
  const pct = (t: number) => `${(((t - t0) / (t1 - t0)) * 100).toFixed(2)}%`;
  return (
    <div className="timeline">
      <p className="muted">
        {duration(t1 - t0)} from the first phase start to the last phase end · solid: completed · vertical stripes: running · horizontal stripes: retried · crossed: failed · outline: cancelled · hatched:
        waiting in the queue · gaps: retry backoff
      </p>
      <ul className="timeline-rows">
        {[...rows.entries()].map(([phase, row]) => (
          <li key={phase} className="timeline-row">
            <span className="timeline-phase">{phase}</span>
            <span className="timeline-track">
              {row.map((s, i) => {
                const label = `${s.label}: ${s.outcome}, ${duration((s.end ?? now) - s.start)}`;
                return (
                  <span
                    key={i}
                    role="img"
                    aria-label={label}
                    title={label}
                    className={`bar bar-${s.kind} bar-${s.outcome.split(/[ :]/)[0] ?? ''}`}
                    style={{ left: pct(s.start), width: `max(3px, calc(${pct(s.end ?? now)} - ${pct(s.start)}))` }}
                  />
                );
              })}
            </span>
          </li>
        ))}
      </ul>
    </div>
  );
}
