/**
 * Runs, newest first, with filters by status, workflow, user and conversation, a search by run id or
 * requirements text, and paging by cursor (`GET /api/runs`, which stays fast however many runs Redis
 * holds). The filters and the page are kept in the address (`#/runs?status=failed&q=login&cursor=…`),
 * so a reload, a bookmark or a shared link shows the same rows, and Back goes to the page before.
 * The list has no event stream of its own in the API, so it asks again every {@link LIST_REFRESH_MS}
 * (two small reads) to show new runs and status changes without a reload.
 */
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { ApiError, api, q, type RunProgress, type RunSummary } from './api.js';
import { cost, duration, time, tokens } from './format.js';
import { StatusBadge } from './status.js';

const LIST_REFRESH_MS = 2000;
const PAGE_SIZE = 25;
const STATUSES = ['created', 'queued', 'active', 'waiting', 'completed', 'failed', 'cancelled'];

/** The list's state as the address holds it: each filter's API parameter and the page's cursor. */
interface ListState {
  status: string;
  workflow: string;
  user_id: string;
  conversation_id: string;
  q: string;
  cursor: string;
}

const FILTERS = ['status', 'workflow', 'user_id', 'conversation_id', 'q'] as const;

/** The list's state from the address (`#/runs?…`). */
function readState(): ListState {
  const query = window.location.hash.split('?')[1] ?? '';
  const p = new URLSearchParams(query);
  return {
    status: p.get('status') ?? '',
    workflow: p.get('workflow') ?? '',
    user_id: p.get('user_id') ?? '',
    conversation_id: p.get('conversation_id') ?? '',
    q: p.get('q') ?? '',
    cursor: p.get('cursor') ?? '',
  };
}

/** The API query (and the address's query) for a state: the filters that are set, trimmed. */
function queryOf(state: ListState): URLSearchParams {
  const p = new URLSearchParams();
  for (const f of FILTERS) if (state[f].trim()) p.set(f, state[f].trim());
  if (state.cursor) p.set('cursor', state.cursor);
  return p;
}

/** Keep `state` in the address: a new history entry for a new page, the same entry while filters are typed. */
function writeState(state: ListState, newEntry: boolean): void {
  const query = queryOf(state).toString();
  const url = `#/runs${query ? `?${query}` : ''}`;
  if (url === window.location.hash) return;
  if (newEntry) window.history.pushState(null, '', url);
  else window.history.replaceState(null, '', url);
}

export function RunsPage() {
  const [state, setState] = useState(readState);
  // Cursors of the pages before this one (this tab's paging), for "Newer".
  const [previous, setPrevious] = useState<string[]>([]);
  useEffect(() => {
    // Back and Forward, or a link to another filtered list, bring their own state.
    const onChange = () => setState(readState());
    window.addEventListener('popstate', onChange);
    window.addEventListener('hashchange', onChange);
    return () => {
      window.removeEventListener('popstate', onChange);
      window.removeEventListener('hashchange', onChange);
    };
  }, []);

  /** Change one filter: back to the first page, in the same history entry. */
  const setFilter = (name: (typeof FILTERS)[number], value: string) => {
    const next = { ...state, [name]: value, cursor: '' };
    setState(next);
    setPrevious([]);
    writeState(next, false);
  };
  const goTo = (cursor: string, back: string[]) => {
    const next = { ...state, cursor };
    setState(next);
    setPrevious(back);
    writeState(next, true);
  };

  const params = queryOf(state);
  params.set('limit', String(PAGE_SIZE));
  const list = useQuery({
    queryKey: ['runs', params.toString()],
    queryFn: () => api<{ items: RunSummary[]; has_more: boolean; next_cursor: string | null }>('GET', `/api/runs?${params.toString()}`),
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
  const filtered = FILTERS.some((f) => state[f].trim() !== '');

  return (
    <section aria-labelledby="runs-title">
      <h1 id="runs-title">Runs</h1>
      <form className="filters" role="search" aria-label="Filter runs" onSubmit={(e) => e.preventDefault()}>
        <label>
          Search{' '}
          <input type="search" value={state.q} placeholder="run id or words of the requirements" onChange={(e) => setFilter('q', e.target.value)} />
        </label>
        <label>
          Status{' '}
          <select value={state.status} onChange={(e) => setFilter('status', e.target.value)}>
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
          <input type="search" value={state.workflow} placeholder="e.g. software-delivery" onChange={(e) => setFilter('workflow', e.target.value)} />
        </label>
        <label>
          User{' '}
          <input type="search" value={state.user_id} placeholder="user id of an API key" onChange={(e) => setFilter('user_id', e.target.value)} />
        </label>
        <label>
          Conversation{' '}
          <input type="search" value={state.conversation_id} placeholder="conversation id" onChange={(e) => setFilter('conversation_id', e.target.value)} />
        </label>
        {filtered ? (
          <button
            type="button"
            onClick={() => {
              const next = { status: '', workflow: '', user_id: '', conversation_id: '', q: '', cursor: '' };
              setState(next);
              setPrevious([]);
              writeState(next, false);
            }}
          >
            Clear filters
          </button>
        ) : null}
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
            <th scope="col">User</th>
            <th scope="col">Conversation</th>
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
                <td className="mono">{r.user_id ?? '—'}</td>
                <td>{r.conversation_id ?? '—'}</td>
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
      {list.data && list.data.items.length === 0 ? <p>{list.data.has_more ? 'No runs match among the runs looked at; Older goes on.' : 'No runs match.'}</p> : null}
      <nav className="pager" aria-label="Pages">
        <button type="button" disabled={state.cursor === ''} onClick={() => goTo(previous[previous.length - 1] ?? '', previous.slice(0, -1))}>
          Newer
        </button>
        <button type="button" disabled={!list.data?.next_cursor} onClick={() => list.data?.next_cursor && goTo(list.data.next_cursor, [...previous, state.cursor])}>
          Older
        </button>
      </nav>
    </section>
  );
}
