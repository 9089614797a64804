/**
 * The phase panel: what the phase is, its status, usage and cost, every attempt with its error (from
 * the event log), and its output, rendered for its role (plan, design, code, review) or as JSON.
 */
import type { PhaseResult, RunEvent, RunWorkflowPhase } from './api.js';
import { cost, duration, tokens } from './format.js';
import { StatusBadge } from './status.js';

interface Attempt {
  iteration: number;
  attempt: number;
  at: number | undefined;
  outcome: string;
  error?: { code: string; message: string } | undefined;
}

/** Attempts of one phase, in order, from its phase_started / phase_retry / phase_completed / phase_failed events. */
export function attemptsOf(phase: string, events: readonly RunEvent[]): Attempt[] {
  const out: Attempt[] = [];
  for (const e of events) {
    const d = e.data;
    if (d.phase !== phase) continue;
    const last = out[out.length - 1];
    if (d.type === 'phase_started') {
      out.push({ iteration: Number(d.iteration ?? 1), attempt: Number(d.attempt ?? 1), at: d.at, outcome: 'running' });
    } else if (last && d.type === 'phase_retry') {
      last.outcome = 'retried';
      last.error = d.error as Attempt['error'];
    } else if (last && d.type === 'phase_failed') {
      last.outcome = 'failed';
      last.error = d.error as Attempt['error'];
    } else if (last && d.type === 'phase_completed') {
      last.outcome = `completed in ${duration(Number(d.duration_ms))}`;
    } else if (last && d.type === 'phase_cancelled') {
      last.outcome = `cancelled: ${text(d.reason)}`;
    }
  }
  return out;
}

export function PhasePanel(props: { phase: RunWorkflowPhase; result: PhaseResult | undefined; output: unknown; events: readonly RunEvent[]; onClose: () => void }) {
  const { phase, result, output } = props;
  const attempts = attemptsOf(phase.name, props.events);
  const u = result?.usage;
  return (
    <section aria-label={`Phase ${phase.name}`} className="phase-panel">
      <header className="panel-header">
        <h2>Phase {phase.name}</h2>
        <button type="button" onClick={props.onClose}>
          Close phase panel
        </button>
      </header>
      <dl className="facts">
        <div>
          <dt>Status</dt>
          <dd>
            <StatusBadge status={result?.status ?? 'pending'} detail={result?.error?.code ?? result?.reason} />
          </dd>
        </div>
        <div>
          <dt>Kind</dt>
          <dd>{phase.kind === 'agent' ? `agent ${result?.agent ?? phase.agent}` : phase.kind}</dd>
        </div>
        <div>
          <dt>Iterations</dt>
          <dd>
            {result?.iterations ?? 0} (at most {phase.max_iterations})
          </dd>
        </div>
        <div>
          <dt>Duration</dt>
          <dd>{duration(result?.duration_ms)}</dd>
        </div>
        <div>
          <dt>Cost</dt>
          <dd>{cost(u)}{result?.cache_hit ? ' (cached result)' : ''}</dd>
        </div>
        {result?.model ? (
          <div>
            <dt>Model</dt>
            <dd>{result.model}</dd>
          </div>
        ) : null}
      </dl>
      {phase.description ? <p>{phase.description}</p> : null}
      {result?.error ? (
        <p className="error">
          {result.error.code}: {result.error.message}
        </p>
      ) : null}
      {u ? (
        <table className="usage">
          <caption>Usage (tokens)</caption>
          <thead>
            <tr>
              <th scope="col">input</th>
              <th scope="col">output</th>
              <th scope="col">cache read</th>
              <th scope="col">cache write</th>
              <th scope="col">total</th>
            </tr>
          </thead>
          <tbody>
            <tr>
              <td>{u.input_tokens}</td>
              <td>{u.output_tokens}</td>
              <td>{u.cache_read_input_tokens}</td>
              <td>{u.cache_creation_input_tokens}</td>
              <td>{tokens(u)}</td>
            </tr>
          </tbody>
        </table>
      ) : null}
      <h3>Attempts</h3>
      {attempts.length === 0 ? (
        <p className="muted">No attempt started yet.</p>
      ) : (
        <ol className="attempts">
          {attempts.map((a, i) => (
            <li key={i}>
              iteration {a.iteration}, attempt {a.attempt}: {a.outcome}
              {a.error ? (
                <span className="error">
                  {' '}
                  — {a.error.code}: {a.error.message}
                </span>
              ) : null}
            </li>
          ))}
        </ol>
      )}
      <ToolCalls phase={phase.name} events={props.events} />
      {phase.instructions ? (
        <details>
          <summary>Instructions</summary>
          <pre>{phase.instructions}</pre>
        </details>
      ) : null}
      <h3>Output</h3>
      {output === undefined ? <p className="muted">No output yet.</p> : <RoleOutput agent={result?.agent ?? phase.agent} output={output} />}
    </section>
  );
}

/** The tool calls the phase's agent made inside its turns (`tool_call` events), when there are any. */
function ToolCalls({ phase, events }: { phase: string; events: readonly RunEvent[] }) {
  const calls = events.filter((e) => e.data.type === 'tool_call' && e.data.phase === phase).map((e) => e.data);
  if (calls.length === 0) return null;
  return (
    <>
      <h3>Tool calls</h3>
      <ol className="tool-calls">
        {calls.map((c, i) => (
          <li key={i}>
            iteration {text(c.iteration)}, attempt {text(c.attempt)}: {text(c.tool)} ({duration(Number(c.duration_ms))}, {c.status === 'ok' ? `${text(c.result_bytes)} bytes` : <span className="error">error: {text(c.error)}</span>})
          </li>
        ))}
      </ol>
    </>
  );
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
/** A string or number field as text; anything else is `fallback`. */
const text = (v: unknown, fallback = ''): string => (typeof v === 'string' || typeof v === 'number' ? String(v) : fallback);

/** Plan tasks with acceptance criteria; review findings by severity; coder files; else JSON. The raw JSON is always there too. */
function RoleOutput({ agent, output }: { agent: string; output: unknown }) {
  let view = null;
  if (isObj(output) && Array.isArray(output.tasks)) {
    view = (
      <div>
        {typeof output.summary === 'string' ? <p>{output.summary}</p> : null}
        <ol className="tasks">
          {arr(output.tasks).filter(isObj).map((t, i) => (
            <li key={i}>
              <strong>
                {text(t.id)} {text(t.title)}
              </strong>
              {t.description ? <p>{text(t.description)}</p> : null}
              <ul aria-label={`Acceptance criteria of ${text(t.id, String(i + 1))}`}>
                {arr(t.acceptance_criteria).map((c, j) => (
                  <li key={j}>{text(c)}</li>
                ))}
              </ul>
            </li>
          ))}
        </ol>
        {arr(output.open_questions).length > 0 ? (
          <>
            <h4>Open questions</h4>
            <ul>{arr(output.open_questions).map((q, i) => <li key={i}>{text(q)}</li>)}</ul>
          </>
        ) : null}
      </div>
    );
  } else if (isObj(output) && Array.isArray(output.findings)) {
    const order = ['critical', 'major', 'minor', 'info'];
    const findings = arr(output.findings).filter(isObj).sort((a, b) => order.indexOf(text(a.severity)) - order.indexOf(text(b.severity)));
    view = (
      <div>
        <p>
          Verdict: <strong>{text(output.verdict, '—')}</strong>
        </p>
        {typeof output.summary === 'string' ? <p>{output.summary}</p> : null}
        <table>
          <caption>Findings by severity</caption>
          <thead>
            <tr>
              <th scope="col">severity</th>
              <th scope="col">file</th>
              <th scope="col">message</th>
            </tr>
          </thead>
          <tbody>
            {findings.map((f, i) => (
              <tr key={i}>
                <td>{text(f.severity)}</td>
                <td className="mono">{text(f.file)}</td>
                <td>{text(f.message)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    );
  } else if (isObj(output) && Array.isArray(output.files)) {
    view = (
      <div>
        {arr(output.files).filter(isObj).map((f, i) => (
          <details key={i}>
            <summary className="mono">{text(f.path)}</summary>
            <pre className="code">{text(f.content)}</pre>
          </details>
        ))}
      </div>
    );
  }
  return (
    <div className={`output output-${agent}`}>
      {view}
      <details open={view === null}>
        <summary>Output as JSON</summary>
        <pre className="json">{JSON.stringify(output, null, 2)}</pre>
      </details>
    </div>
  );
}
