/**
 * Run actions: cancel, resume, approve or reject a waiting approval. Each asks for confirmation,
 * saying what it will do, then calls the API; a refusal (409, 403, …) is shown verbatim.
 */
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { ApiError, api, type RunDetail } from './api.js';

interface Action {
  /** Button text, also its accessible name. */
  label: string;
  /** What confirming will do, in the dialog. */
  explain: string;
  /** A text field in the dialog (an approval's comment, a re-run's requirements), passed to `run`. */
  field?: { label: string; initial: string };
  run: (comment: string) => Promise<unknown>;
}

export function RunActions({ run, onDone, phase }: { run: RunDetail; onDone: (action: string) => void; phase?: string | undefined }) {
  const queryClient = useQueryClient();
  const [pending, setPending] = useState<Action | null>(null);
  const [comment, setComment] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const id = encodeURIComponent(run.run_id);
  const mutation = useMutation({
    mutationFn: (a: Action) => a.run(comment),
    onSuccess: (_data, a) => {
      setNotice(`${a.label}: accepted by the API`);
      setError(null);
      onDone(a.label);
      void queryClient.invalidateQueries({ queryKey: ['run', run.run_id] });
    },
    onError: (err) => {
      setNotice(null);
      setError(err instanceof ApiError ? err.apiMessage : err.message);
    },
    onSettled: () => setPending(null),
  });

  const actions: Action[] = [];
  const going = run.status === 'created' || run.status === 'queued' || run.status === 'active' || run.status === 'waiting';
  if (going) {
    actions.push({
      label: 'Cancel run',
      explain: `Cancel run ${run.run_id}: phases in flight are aborted and nothing else is started. Completed phases keep their outputs, and the run can be resumed later.`,
      run: () => api('POST', `/api/runs/${id}/cancel`, { reason: 'cancelled from the console' }),
    });
  }
  if (run.status === 'failed' || run.status === 'cancelled') {
    actions.push({
      label: 'Resume run',
      explain: `Resume run ${run.run_id}: completed phases keep their outputs and are not run again; failed, cancelled and pending phases run.`,
      run: () => api('POST', `/api/runs/${id}/resume`),
    });
  }
  if (phase && (run.status === 'completed' || run.status === 'failed' || run.status === 'cancelled')) {
    actions.push({
      label: `Re-run from ${phase}`,
      explain: `Start a new run of the same workflow version that reuses the outputs of the phases before "${phase}" and runs "${phase}" and everything after it again, with the requirements below.`,
      field: { label: 'Requirements', initial: run.requirements },
      run: async (requirements) => {
        const created = await api<{ run_id: string }>('POST', `/api/runs/${id}/rerun`, { from: phase, requirements });
        window.location.hash = `#/runs/${encodeURIComponent(created.run_id)}`;
        return created;
      },
    });
  }
  for (const w of run.waiting_for) {
    if (w.event !== 'approval') continue;
    actions.push({
      label: `Approve ${w.phase}`,
      explain: `Approve phase "${w.phase}"${typeof w.prompt === 'string' ? ` (${w.prompt})` : ''}: the run goes on with the phases after it.`,
      field: { label: 'Comment (optional)', initial: '' },
      run: (c) => api('POST', `/api/runs/${id}/events`, { type: 'approval', data: { approved: true, ...(c ? { comment: c } : {}) } }),
    });
    actions.push({
      label: `Reject ${w.phase}`,
      explain: `Reject phase "${w.phase}": the phase fails as rejected, and the workflow's error handling decides what follows.`,
      field: { label: 'Comment (optional)', initial: '' },
      run: (c) => api('POST', `/api/runs/${id}/events`, { type: 'approval', data: { approved: false, ...(c ? { comment: c } : {}) } }),
    });
  }

  return (
    <section aria-label="Actions" className="actions">
      {actions.map((a) => (
        <button
          key={a.label}
          type="button"
          onClick={() => {
            setComment(a.field?.initial ?? '');
            setError(null);
            setPending(a);
          }}
        >
          {a.label}
        </button>
      ))}
      {actions.length === 0 ? <span className="muted">No action applies to a {run.status} run.</span> : null}
      {notice ? (
        <p role="status" className="notice">
          {notice}
        </p>
      ) : null}
      {error ? (
        <p role="alert" className="error">
          {error}
        </p>
      ) : null}
      {pending ? (
        <ConfirmDialog
          action={pending}
          comment={comment}
          setComment={setComment}
          busy={mutation.isPending}
          onConfirm={() => mutation.mutate(pending)}
          onClose={() => setPending(null)}
        />
      ) : null}
    </section>
  );
}

function ConfirmDialog(props: { action: Action; comment: string; setComment: (c: string) => void; busy: boolean; onConfirm: () => void; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  const { action } = props;
  return (
    <dialog ref={ref} aria-labelledby="confirm-title" aria-describedby="confirm-explain" onClose={props.onClose} className="confirm">
      <h2 id="confirm-title">{action.label}?</h2>
      <p id="confirm-explain">{action.explain}</p>
      {action.field ? (
        <label>
          {action.field.label}
          <textarea value={props.comment} onChange={(e) => props.setComment(e.target.value)} rows={action.field.initial ? 6 : 3} />
        </label>
      ) : null}
      <div className="dialog-buttons">
        <button type="button" onClick={props.onConfirm} disabled={props.busy}>
          Confirm
        </button>
        <button type="button" onClick={() => ref.current?.close()}>
          Go back
        </button>
      </div>
    </dialog>
  );
}
