/**
 * Schedules: every schedule with its workflow, when it fires, its next fire and how its last one
 * went (`GET /api/schedules`), with Pause / Resume and Run now (admin keys). The API has no stream of
 * schedule changes, so the page reads them again every {@link SCHEDULES_REFRESH_MS}.
 */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { ApiError, api, q } from './api.js';
import { time } from './format.js';

const SCHEDULES_REFRESH_MS = 2000;

interface Schedule {
  name: string;
  workflow: string;
  cron: string | null;
  every: string | null;
  tz: string;
  overlap: string;
  catch_up: string;
  status: 'active' | 'paused';
  next_fire_at: string | null;
  last_fire_at: string | null;
  last_outcome: 'start' | 'skipped' | 'missed' | null;
  last_run_id: string | null;
  last_error: string | null;
  fires: { start: number; skipped: number; missed: number };
}

interface Fire {
  action: 'start' | 'skipped' | 'missed' | 'dropped';
  run_id?: string;
  previous_run_id?: string;
}

type Notice = { text: string; runId?: string };

export function SchedulesPage() {
  const queryClient = useQueryClient();
  const rows = useQuery({ queryKey: ['schedules'], queryFn: () => api<{ items: Schedule[] }>('GET', '/api/schedules'), refetchInterval: SCHEDULES_REFRESH_MS });
  const [notice, setNotice] = useState<Notice | null>(null);
  const [error, setError] = useState<string | null>(null);
  const action = useMutation({
    mutationFn: ({ name, verb }: { name: string; verb: 'pause' | 'resume' | 'trigger' }) => api<Schedule | Fire>('POST', `/api/schedules/${q(name)}/${verb}`),
    onSuccess: (data, { name, verb }) => {
      setError(null);
      if (verb === 'trigger') {
        const fire = data as Fire;
        setNotice(
          fire.action === 'start' && fire.run_id
            ? { text: `${name} fired: run `, runId: fire.run_id }
            : { text: `${name} fired, nothing started: ${fire.action}${fire.previous_run_id ? ` (run ${fire.previous_run_id} is still going)` : ''}` },
        );
      } else {
        setNotice({ text: `${name} ${verb === 'pause' ? 'paused' : 'resumed'}` });
      }
      void queryClient.invalidateQueries({ queryKey: ['schedules'] });
    },
    onError: (err) => {
      setNotice(null);
      setError(err instanceof ApiError ? err.apiMessage : err.message);
    },
  });
  return (
    <section aria-labelledby="schedules-title">
      <h1 id="schedules-title">Schedules</h1>
      {rows.error ? (
        <p role="alert" className="error">
          {rows.error instanceof ApiError ? rows.error.apiMessage : rows.error.message}
        </p>
      ) : null}
      {error ? (
        <p role="alert" className="error">
          {error}
        </p>
      ) : null}
      {notice ? (
        <p role="status">
          {notice.text}
          {notice.runId ? <a href={`#/runs/${q(notice.runId)}`}>{notice.runId}</a> : null}
        </p>
      ) : null}
      {rows.data && rows.data.items.length === 0 ? <p>
          No schedules yet. Add one with <code>fleet schedules add</code> or <code>POST /api/schedules</code>.
        </p> : null}
      <table>
        <caption className="visually-hidden">Schedules</caption>
        <thead>
          <tr>
            <th scope="col">Schedule</th>
            <th scope="col">Workflow</th>
            <th scope="col">When</th>
            <th scope="col">Status</th>
            <th scope="col">Next fire</th>
            <th scope="col">Last fire</th>
            <th scope="col">Fires</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {rows.data?.items.map((s) => (
            <tr key={s.name}>
              <th scope="row">{s.name}</th>
              <td>{s.workflow}</td>
              <td>
                {s.cron !== null ? (
                  <>
                    <code>{s.cron}</code> {s.tz}
                  </>
                ) : (
                  `every ${s.every ?? '?'}`
                )}
              </td>
              <td>{s.status}</td>
              <td>{s.next_fire_at ? time(s.next_fire_at) : '—'}</td>
              <td>
                {s.last_fire_at ? (
                  <>
                    {time(s.last_fire_at)} {s.last_outcome}
                    {s.last_outcome === 'start' && s.last_run_id ? (
                      <>
                        {' '}
                        <a href={`#/runs/${q(s.last_run_id)}`}>run</a>
                      </>
                    ) : null}
                  </>
                ) : (
                  '—'
                )}
                {s.last_error ? <span className="error"> {s.last_error}</span> : null}
              </td>
              <td>
                {s.fires.start} started, {s.fires.skipped} skipped, {s.fires.missed} missed
              </td>
              <td>
                <button type="button" disabled={action.isPending} onClick={() => action.mutate({ name: s.name, verb: s.status === 'active' ? 'pause' : 'resume' })}>
                  {s.status === 'active' ? `Pause ${s.name}` : `Resume ${s.name}`}
                </button>{' '}
                <button type="button" disabled={action.isPending} onClick={() => action.mutate({ name: s.name, verb: 'trigger' })}>
                  {`Run ${s.name} now`}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
