/**
 * Analytics per workflow from `GET /api/analytics/workflows`: runs by status, completion rate, median
 * and p95 time to complete, mean tokens per run, with a bar per workflow for the completion rate.
 */
import { useQuery } from '@tanstack/react-query';
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
      {stats.data ? <p className="muted">Over the {stats.data.runs_considered} most recent runs.</p> : null}
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
