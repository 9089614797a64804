/**
 * One run: its workflow graph with live phase status, the actions, the phase panel and the event log.
 * The event stream (SSE) drives every update: each event refreshes the run's result once.
 */
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { memo, useDeferredValue, useEffect, useMemo, useRef, useState } from 'react';
import { ApiError, type PhaseResult, type RunEvent } from './api.js';
import { RunActions } from './actions.js';
import { clock, cost, duration, time, tokens } from './format.js';
import { WorkflowGraph } from './graph.js';
import { PhasePanel } from './phase-panel.js';
import { followRun, type PhaseOutputDelta } from './sse.js';
import { LiveOutput, type LiveOutputs } from './live-output.js';
import { StatusBadge } from './status.js';
import { Timeline } from './timeline.js';
import { runQuery, runWorkflowQuery } from './run-queries.js';

const NO_EVENTS: RunEvent[] = [];

/** Events closer together than this refresh the run's result once, ms. */
const REFRESH_COALESCE_MS = 150;

function useRunEvents(runId: string, generation: number) {
  const queryClient = useQueryClient();
  const [events, setEvents] = useState<RunEvent[]>([]);
  const [connection, setConnection] = useState('connecting');
  const [live, setLive] = useState<LiveOutputs>(new Map());
  const last = useRef<string | undefined>(undefined);
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const refresh = (now: boolean) => {
      if (now) {
        // The run's last event: read the result at once (a `fleet run --console` stops serving soon after).
        if (timer) clearTimeout(timer);
        timer = undefined;
        void queryClient.invalidateQueries({ queryKey: ['run', runId] });
        return;
      }
      if (timer) return;
      timer = setTimeout(() => {
        timer = undefined;
        void queryClient.invalidateQueries({ queryKey: ['run', runId] });
      }, REFRESH_COALESCE_MS);
    };
    followRun(runId, controller.signal, {
      ...(last.current ? { lastEventId: last.current } : {}),
      onEvent: (e) => {
        last.current = e.id;
        setEvents((prev) => (prev.some((p) => p.id === e.id) ? prev : [...prev, e]));
        refresh(e.data.type === 'run_finished');
      },
      onOutput: (d) => setLive((prev) => withDelta(prev, d)),
      onState: (s, detail) => setConnection(detail ? `${s}: ${detail}` : s),
    }).catch((err: unknown) => setConnection(`ended: ${err instanceof ApiError ? err.apiMessage : (err as Error).message}`));
    return () => {
      controller.abort();
      if (timer) clearTimeout(timer);
    };
  }, [runId, generation, queryClient]);
  return { events, connection, live };
}

/**
 * `live` with one more piece: each phase keeps the output of its latest attempt and call, pieces
 * already held (a reconnect sends the kept ones again) are dropped by their offset.
 */
function withDelta(live: LiveOutputs, d: PhaseOutputDelta): LiveOutputs {
  const key = `${d.phase}`;
  const current = live.get(key);
  const newer = !current || d.iteration > current.iteration || (d.iteration === current.iteration && (d.attempt > current.attempt || (d.attempt === current.attempt && d.call > current.call)));
  const older = current && !newer && (d.iteration !== current.iteration || d.attempt !== current.attempt || d.call !== current.call);
  if (older) return live;
  const base = newer ? { phase: d.phase, iteration: d.iteration, attempt: d.attempt, call: d.call, text: { text: '', tool_input: '', thinking: '' } } : current;
  if (!base) return live;
  const have = base.text[d.kind];
  if (d.offset + d.text.length <= have.length) return live;
  const next = new Map(live);
  next.set(key, { ...base, text: { ...base.text, [d.kind]: have + d.text.slice(Math.max(0, have.length - d.offset)) } });
  return next;
}

/** A clock for elapsed times on running phases: ticks each second only while something runs. */
function useNow(active: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return undefined;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [active]);
  return now;
}

export function RunPage({ runId }: { runId: string }) {
  const [generation, setGeneration] = useState(0);
  const [selected, setSelected] = useState<string | undefined>(undefined);
  const run = useQuery(runQuery(runId));
  const workflow = useQuery(runWorkflowQuery(runId));
  const { events: liveEvents, connection, live } = useRunEvents(runId, generation);
  // The graph comes first: the timeline and the event log draw the events in a render of their own
  // right after (a run's whole history arrives at once when its page opens).
  const events = useDeferredValue(liveEvents, NO_EVENTS);
  const results = useMemo(() => new Map<string, PhaseResult>(run.data?.phases.map((p) => [p.name, p])), [run.data]);
  // Rebuilt only when a phase starts, not on every event, so the graph is not redrawn for each one.
  const startedKey = liveEvents
    .filter((e) => e.data.type === 'phase_started' && e.data.phase && e.data.at)
    .map((e) => `${e.data.phase}@${e.data.at}`)
    .join(',');
  const startedAt = useMemo(() => {
    const m = new Map<string, number>();
    for (const item of startedKey ? startedKey.split(',') : []) {
      const at = item.lastIndexOf('@');
      m.set(item.slice(0, at), Number(item.slice(at + 1)));
    }
    return m;
  }, [startedKey]);
  const now = useNow(run.data?.phases.some((p) => p.status === 'running') ?? false);

  const error = run.error ?? workflow.error;
  if (error) {
    return (
      <section>
        <h1>Run {runId}</h1>
        <p role="alert" className="error">
          {error instanceof ApiError ? error.apiMessage : error.message}
        </p>
        <a href="#/runs">Back to runs</a>
      </section>
    );
  }
  if (!run.data || !workflow.data) return <p role="status">Loading run {runId}…</p>;
  const r = run.data;
  const phase = selected ? workflow.data.phases.find((p) => p.name === selected) : undefined;
  return (
    <article aria-labelledby="run-title" className="run-page">
      <header className="run-header">
        <h1 id="run-title">
          Run <span className="mono">{r.run_id}</span>
        </h1>
        <dl className="facts">
          <div>
            <dt>Status</dt>
            <dd aria-label="Run status">
              <StatusBadge status={r.status} />
            </dd>
          </div>
          <div>
            <dt>Workflow</dt>
            <dd>
              {r.workflow.name} v{r.workflow.version}
            </dd>
          </div>
          <div>
            <dt>Started</dt>
            <dd>{time(r.created_at)}</dd>
          </div>
          {r.schedule ? (
            <div>
              <dt>Schedule</dt>
              <dd>
                <a href="#/schedules">{r.schedule}</a>, fire of {time(r.schedule_fire_time)}
              </dd>
            </div>
          ) : null}
          <div>
            <dt>Duration</dt>
            <dd>{duration(r.duration_ms)}</dd>
          </div>
          <div>
            <dt>Phases done</dt>
            <dd>
              {r.phases.filter((p) => p.status === 'completed' || p.status === 'skipped').length} / {r.phases.length}
            </dd>
          </div>
          <div>
            <dt>Tokens</dt>
            <dd>{tokens(r.usage)}</dd>
          </div>
          <div>
            <dt>Cost</dt>
            <dd>{cost(r.usage)}</dd>
          </div>
          {r.concurrency ? (
            <div>
              <dt>Concurrency key</dt>
              <dd aria-label="Concurrency key">
                <span className="mono">{r.concurrency.key}</span>
                {r.concurrency.limit !== null ? ` (limit ${r.concurrency.limit})` : ''}
              </dd>
            </div>
          ) : null}
          {r.priority !== undefined ? (
            <div>
              <dt>Priority</dt>
              <dd aria-label="Priority">{r.priority}</dd>
            </div>
          ) : null}
          <div>
            <dt>Model</dt>
            <dd>
              {r.provider}
              {r.models && r.models.length > 1 ? ` · ${r.models.join(', ')}` : r.model ? ` · ${r.model}` : ''}
            </dd>
          </div>
        </dl>
        <details>
          <summary>Requirements</summary>
          <pre className="requirements">{r.requirements}</pre>
        </details>
      </header>
      <RunActions run={r} phase={selected} onDone={(a) => a === 'Resume run' && setGeneration((g) => g + 1)} />
      {r.status === 'queued' ? (
        <p role="status" className="waiting">
          Queued: {r.concurrency ? `concurrency key "${r.concurrency.key}" has ${r.concurrency.limit ?? 'its'} run(s) active; ` : ''}this run starts when one of them finishes.
        </p>
      ) : null}
      {r.waiting_for.length > 0 ? (
        <p role="status" className="waiting">
          Waiting: {r.waiting_for.map((w) => `${w.phase} waits for "${w.event}"${typeof w.prompt === 'string' ? ` (${w.prompt})` : Array.isArray(w.prompt) ? `: ${w.prompt.map(String).join(' ')}` : promptMessage(w.prompt)}`).join('; ')}
        </p>
      ) : null}
      <section aria-label="Workflow graph">
        <h2>Workflow graph</h2>
        <WorkflowGraph phases={workflow.data.phases} results={results} startedAt={startedAt} now={now} selected={selected} onSelect={setSelected} />
      </section>
      <LiveOutput live={live} running={new Set(r.phases.filter((p) => p.status === 'running' || p.status === 'retrying').map((p) => p.name))} />
      <section aria-label="Timeline">
        <h2>Timeline</h2>
        <Timeline events={events} now={now} />
      </section>
      <div className="run-columns">
        {phase ? (
          <PhasePanel phase={phase} result={results.get(phase.name)} output={r.results[phase.name]} events={events} onClose={() => setSelected(undefined)} />
        ) : (
          <section aria-label="Phase panel" className="phase-panel">
            <h2>Phase</h2>
            <p className="muted">Choose a phase in the graph to see its output, usage, cost and attempts.</p>
          </section>
        )}
        <EventLog events={events} connection={connection} />
      </div>
    </article>
  );
}

function describe(e: RunEvent): string {
  const d = e.data;
  const parts: string[] = [];
  if (d.phase) parts.push(String(d.phase));
  if (typeof d.attempt === 'number') parts.push(`attempt ${d.attempt}`);
  if (typeof d.iteration === 'number' && d.iteration > 1) parts.push(`iteration ${d.iteration}`);
  const err = d.error as { code?: string; message?: string } | undefined;
  if (err?.code) parts.push(`${err.code}: ${err.message ?? ''}`);
  if (typeof d.reason === 'string') parts.push(d.reason);
  if (typeof d.status === 'string') parts.push(d.status);
  if (typeof d.event === 'string') parts.push(`event ${d.event}`);
  if (typeof d.action === 'string') parts.push(`${d.action}${typeof d.target === 'string' ? ` → ${d.target}` : ''}`);
  if (typeof d.duration_ms === 'number') parts.push(duration(d.duration_ms));
  return parts.join(' · ');
}

/** One line of the event log; an event never changes, so a line is drawn once. */
const EventLine = memo(function EventLine({ event }: { event: RunEvent }) {
  return (
    <li>
      <time className="muted">{event.data.at ? clock(event.data.at) : ''}</time> <strong>{event.type}</strong> {describe(event)}
    </li>
  );
});

function EventLog({ events, connection }: { events: RunEvent[]; connection: string }) {
  return (
    <section aria-label="Event log" className="event-log">
      <h2>Event log</h2>
      <p className="muted" role="status" aria-label="Event stream">
        stream: {connection} · {events.length} events
      </p>
      <ol>
        {events.map((e) => (
          <EventLine key={e.id} event={e} />
        ))}
      </ol>
    </section>
  );
}

/** The `message` of a structured waiting prompt (a budget wait says what it would have spent), in parentheses. */
function promptMessage(prompt: unknown): string {
  const message = prompt && typeof prompt === 'object' && 'message' in prompt ? (prompt).message : undefined;
  return typeof message === 'string' ? ` (${message})` : '';
}
