/**
 * Analytics: runs per day (`GET /api/analytics/daily`, a stacked bar per day by status, each status
 * with its own pattern, with the day's cost as a line, and a table), failed runs by error code (`GET /api/analytics/failures`), and per
 * workflow (`GET /api/analytics/workflows`: runs by status, completion rate, median and p95 time to
 * complete, mean tokens per run, with a bar per workflow for the completion rate).
 */
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { Bar, CartesianGrid, ComposedChart, Legend, Line, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { ApiError, api } from './api.js';
import { duration } from './format.js';

interface WorkflowStats {
  workflow: string;
  runs: number;
  by_status: Record<string, number>;
  completion_rate: number | null;
  median_ms: number | null;
  p95_ms: number | null;
  mean_tokens: number | null;
}

interface DailyStats {
  day: string;
  runs: number;
  by_status: Record<string, number>;
  completion_rate: number | null;
  median_ms: number | null;
  p95_ms: number | null;
  tokens: number;
  cost_usd: number;
}

interface FailureStats {
  error_code: string;
  runs: number;
  by_workflow: Record<string, number>;
  last_created_at: string;
}

const STATUS_COLOURS: Record<string, string> = { completed: '#2f855a', failed: '#c53030', cancelled: '#718096' };
/**
 * The fill of each status's bars (and legend swatch): a pattern as well as a colour, so the stack is
 * not read by colour alone (solid completed, crossed failed, striped cancelled).
 */
const STATUS_FILLS: Record<string, string> = { completed: STATUS_COLOURS.completed ?? '', failed: 'url(#fill-failed)', cancelled: 'url(#fill-cancelled)' };

function StatusPatterns() {
  return (
    <defs>
      <pattern id="fill-failed" width="6" height="6" patternUnits="userSpaceOnUse">
        <rect width="6" height="6" fill="#fff" />
        <path d="M0 0L6 6M6 0L0 6" stroke={STATUS_COLOURS.failed} strokeWidth="2" />
      </pattern>
      <pattern id="fill-cancelled" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
        <rect width="6" height="6" fill="#fff" />
        <rect width="3" height="6" fill={STATUS_COLOURS.cancelled} />
      </pattern>
    </defs>
  );
}

/** Runs per day by status and the day's cost, over the chosen window; a table with the same figures. */
function DailySection() {
  const [days, setDays] = useState(30);
  const daily = useQuery({ queryKey: ['analytics-daily', days], queryFn: () => api<{ items: DailyStats[] }>('GET', `/api/analytics/daily?days=${days}`) });
  const rows = [...(daily.data?.items ?? [])].reverse().map((d) => ({ ...d, ...d.by_status }));
  return (
    <section aria-labelledby="daily-title">
      <h2 id="daily-title">Runs per day</h2>
      <label>
        Window{' '}
        <select value={days} onChange={(e) => setDays(Number(e.target.value))} aria-label="days shown">
          {[7, 30, 90, 365].map((n) => (
            <option key={n} value={n}>
              last {n} days
            </option>
          ))}
        </select>
      </label>
      {daily.error ? (
        <p role="alert" className="error">
          {daily.error instanceof ApiError ? daily.error.apiMessage : daily.error.message}
        </p>
      ) : null}
      {rows.length > 0 ? (
        <div className="chart" role="img" aria-label={`runs per day over the last ${days} days`}>
          <ResponsiveContainer width="100%" height={260}>
            <ComposedChart data={rows} margin={{ top: 8, right: 24, bottom: 8, left: 0 }}>
              <StatusPatterns />
              <CartesianGrid strokeDasharray="3 3" />
              <XAxis dataKey="day" />
              <YAxis yAxisId="runs" allowDecimals={false} />
              <YAxis yAxisId="cost" orientation="right" tickFormatter={(v: number) => `$${v}`} />
              <Tooltip />
              <Legend />
              {Object.keys(STATUS_COLOURS).map((status) => (
                <Bar key={status} yAxisId="runs" dataKey={status} stackId="status" fill={STATUS_FILLS[status]} stroke={STATUS_COLOURS[status]} isAnimationActive={false} />
              ))}
              <Line yAxisId="cost" dataKey="cost_usd" name="cost (USD)" stroke="#2b6cb0" dot={false} isAnimationActive={false} />
            </ComposedChart>
          </ResponsiveContainer>
        </div>
      ) : daily.data ? (
        <p className="muted">No runs in the last {days} days.</p>
      ) : null}
      <table>
        <caption className="visually-hidden">Per day</caption>
        <thead>
          <tr>
            <th scope="col">Day (UTC)</th>
            <th scope="col">Runs</th>
            <th scope="col">By status</th>
            <th scope="col">Completion rate</th>
            <th scope="col">p50</th>
            <th scope="col">p95</th>
            <th scope="col">Tokens</th>
            <th scope="col">Cost</th>
          </tr>
        </thead>
        <tbody>
          {daily.data?.items.map((d) => (
            <tr key={d.day}>
              <td>{d.day}</td>
              <td>{d.runs}</td>
              <td>
                {Object.entries(d.by_status)
                  .map(([k, v]) => `${k} ${v}`)
                  .join(', ')}
              </td>
              <td>{d.completion_rate === null ? '—' : `${(d.completion_rate * 100).toFixed(0)}%`}</td>
              <td>{duration(d.median_ms)}</td>
              <td>{duration(d.p95_ms)}</td>
              <td>{d.tokens.toLocaleString('en-US')}</td>
              <td>${d.cost_usd.toFixed(4)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** Failed runs by the code of their first error. */
function FailuresSection() {
  const failures = useQuery({ queryKey: ['analytics-failures'], queryFn: () => api<{ items: FailureStats[] }>('GET', '/api/analytics/failures?days=3660') });
  return (
    <section aria-labelledby="failures-title">
      <h2 id="failures-title">Failures by error code</h2>
      {failures.error ? (
        <p role="alert" className="error">
          {failures.error instanceof ApiError ? failures.error.apiMessage : failures.error.message}
        </p>
      ) : null}
      {failures.data && failures.data.items.length === 0 ? <p className="muted">No failed runs.</p> : null}
      <table hidden={!failures.data || failures.data.items.length === 0}>
        <caption className="visually-hidden">Failed runs by error code</caption>
        <thead>
          <tr>
            <th scope="col">Error code</th>
            <th scope="col">Failed runs</th>
            <th scope="col">Workflows</th>
            <th scope="col">Latest</th>
          </tr>
        </thead>
        <tbody>
          {failures.data?.items.map((f) => (
            <tr key={f.error_code}>
              <td>
                <code>{f.error_code}</code>
              </td>
              <td>{f.runs}</td>
              <td>
                {Object.entries(f.by_workflow)
                  .map(([k, v]) => `${k} ${v}`)
                  .join(', ')}
              </td>
              <td>{new Date(f.last_created_at).toLocaleString()}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function AnalyticsPage() {
  const stats = useQuery({ queryKey: ['analytics'], queryFn: () => api<{ items: WorkflowStats[]; runs_considered: number }>('GET', '/api/analytics/workflows') });
  return (
    <section aria-labelledby="analytics-title">
      <h1 id="analytics-title">Analytics</h1>
      {stats.error ? (
        <p role="alert" className="error">
          {stats.error instanceof ApiError ? stats.error.apiMessage : stats.error.message}
        </p>
      ) : null}
      <DailySection />
      <FailuresSection />
      <h2>Per workflow</h2>
      {stats.data ? <p className="muted">Over {stats.data.runs_considered} runs.</p> : null}
      <table>
        <caption className="visually-hidden">Per workflow</caption>
        <thead>
          <tr>
            <th scope="col">Workflow</th>
            <th scope="col">Runs</th>
            <th scope="col">By status</th>
            <th scope="col">Completion rate</th>
            <th scope="col">p50 time to complete</th>
            <th scope="col">p95 time to complete</th>
            <th scope="col">Mean tokens per run</th>
          </tr>
        </thead>
        <tbody>
          {stats.data?.items.map((s) => (
            <tr key={s.workflow}>
              <td>{s.workflow}</td>
              <td>{s.runs}</td>
              <td>
                {Object.entries(s.by_status)
                  .map(([k, v]) => `${k} ${v}`)
                  .join(', ')}
              </td>
              <td>
                {s.completion_rate === null ? (
                  '—'
                ) : (
                  <span className="rate">
                    <meter min={0} max={1} value={s.completion_rate} aria-label={`completion rate of ${s.workflow}`} /> {(s.completion_rate * 100).toFixed(0)}%
                  </span>
                )}
              </td>
              <td>{duration(s.median_ms)}</td>
              <td>{duration(s.p95_ms)}</td>
              <td>{s.mean_tokens === null ? '—' : Math.round(s.mean_tokens).toLocaleString('en-US')}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
