/**
 * Runs, newest first, with status and workflow filters and paging. The list has no event stream of
 * its own in the API, so it asks again every {@link LIST_REFRESH_MS} (two small reads) to show new runs
 * and status changes without a reload.
 */
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { ApiError, api, q, type RunProgress, type RunSummary } from './api.js';
import { cost, duration, time, tokens } from './format.js';
import { StatusBadge } from './status.js';

const LIST_REFRESH_MS = 2000;
const PAGE_SIZE = 25;
const STATUSES = ['created', 'queued', 'active', 'waiting', 'completed', 'failed', 'cancelled'];

export function RunsPage() {
  const [status, setStatus] = useState('');
  const [workflow, setWorkflow] = useState('');
  const [skip, setSkip] = useState(0);
  const params = new URLSearchParams({ limit: String(PAGE_SIZE), skip: String(skip) });
  if (status) params.set('status', status);
  if (workflow.trim()) params.set('workflow', workflow.trim());
  const list = useQuery({
    queryKey: ['runs', status, workflow.trim(), skip],
    queryFn: () => api<{ items: RunSummary[]; has_more: boolean }>('GET', `/api/runs?${params.toString()}`),
    refetchInterval: LIST_REFRESH_MS,
    placeholderData: keepPreviousData,
  });
  const ids = list.data?.items.map((r) => r.run_id) ?? [];
  const progress = useQuery({
    queryKey: ['runs-progress', ids.join(',')],
    queryFn: () => api<{ items: RunProgress[] }>('GET', `/api/runs/progress?ids=${q(ids.join(','))}`),
    enabled: ids.length > 0,
    refetchInterval: LIST_REFRESH_MS,
    placeholderData: keepPreviousData,
  });
  const byId = new Map(progress.data?.items.map((p) => [p.run_id, p]));

  return (
    <section aria-labelledby="runs-title">
      <h1 id="runs-title">Runs</h1>
      <form className="filters" role="search" aria-label="Filter runs" onSubmit={(e) => e.preventDefault()}>
        <label>
          Status{' '}
          <select
            value={status}
            onChange={(e) => {
              setStatus(e.target.value);
              setSkip(0);
            }}
          >
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Workflow{' '}
          <input
            type="search"
            value={workflow}
            placeholder="e.g. software-delivery"
            onChange={(e) => {
              setWorkflow(e.target.value);
              setSkip(0);
            }}
          />
        </label>
      </form>
      {list.error ? (
        <p role="alert" className="error">
          {list.error instanceof ApiError ? list.error.apiMessage : list.error.message}
        </p>
      ) : null}
      <table className="runs">
        <caption className="visually-hidden">Runs, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Run</th>
            <th scope="col">Status</th>
            <th scope="col">Workflow</th>
            <th scope="col">Started</th>
            <th scope="col">Duration</th>
            <th scope="col">Phases done</th>
            <th scope="col">Tokens</th>
            <th scope="col">Cost</th>
          </tr>
        </thead>
        <tbody>
          {list.data?.items.map((r) => {
            const p = byId.get(r.run_id);
            return (
              <tr key={r.run_id}>
                <td>
                  <a className="mono" href={`#/runs/${encodeURIComponent(r.run_id)}`}>
                    {r.run_id}
                  </a>
                </td>
                <td>
                  <StatusBadge status={r.status} />
                </td>
                <td>
                  {r.workflow.name} <span className="muted">v{r.workflow.version}</span>
                </td>
                <td>{time(r.created_at)}</td>
                <td>{duration(p?.duration_ms)}</td>
                <td>{p ? `${p.phases_done} / ${p.phases_total}` : '—'}</td>
                <td>{tokens(p?.usage)}</td>
                <td>{cost(p?.usage)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {list.data && list.data.items.length === 0 ? <p>No runs match.</p> : null}
      <nav className="pager" aria-label="Pages">
        <button type="button" disabled={skip === 0} onClick={() => setSkip(Math.max(0, skip - PAGE_SIZE))}>
          Newer
        </button>
        <button type="button" disabled={!list.data?.has_more} onClick={() => setSkip(skip + PAGE_SIZE)}>
          Older
        </button>
      </nav>
    </section>
  );
}
