/**
 * Workers: per agent role, pool processes, concurrency, busy slots, waiting and delayed jobs and the
 * oldest wait (`GET /api/workers`, what `fleet workers` prints). The API has no stream of queue
 * counts, so the page reads them again every {@link WORKERS_REFRESH_MS}.
 */
import { useQuery } from '@tanstack/react-query';
import { ApiError, api } from './api.js';

const WORKERS_REFRESH_MS = 2000;

interface WorkerRow {
  role: string;
  processes: number;
  concurrency: number;
  busy: number;
  waiting: number;
  delayed: number;
  oldest_wait_s: number;
}

export function WorkersPage() {
  const rows = useQuery({ queryKey: ['workers'], queryFn: () => api<{ items: WorkerRow[] }>('GET', '/api/workers'), refetchInterval: WORKERS_REFRESH_MS });
  return (
    <section aria-labelledby="workers-title">
      <h1 id="workers-title">Workers</h1>
      {rows.error ? (
        <p role="alert" className="error">
          {rows.error instanceof ApiError ? rows.error.apiMessage : rows.error.message}
        </p>
      ) : null}
      <table>
        <caption className="visually-hidden">Agent pools per role</caption>
        <thead>
          <tr>
            <th scope="col">Role</th>
            <th scope="col">Processes</th>
            <th scope="col">Concurrency</th>
            <th scope="col">Busy</th>
            <th scope="col">Waiting</th>
            <th scope="col">Delayed</th>
            <th scope="col">Oldest wait</th>
          </tr>
        </thead>
        <tbody>
          {rows.data?.items.map((r) => (
            <tr key={r.role}>
              <th scope="row">{r.role}</th>
              <td>{r.processes}</td>
              <td>{r.concurrency}</td>
              <td>
                {r.busy} / {r.concurrency}
              </td>
              <td>{r.waiting}</td>
              <td>{r.delayed}</td>
              <td>{r.oldest_wait_s.toFixed(1)} s</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
