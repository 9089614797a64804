/**
 * Run actions: cancel, resume, re-run from a phase, approve or reject a waiting approval, raise a budget a phase waits on, answer
 * the open questions a phase (a planner) waits on. Each asks for confirmation, saying what it will do, then calls the API; a
 * refusal (409, 403, …) is shown verbatim.
 */
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { ApiError, api, type RunDetail } from './api.js';

interface Action {
  /** Button text, also its accessible name. */
  label: string;
  /** What confirming will do, in the dialog. */
  explain: string;
  /** Text fields in the dialog (an approval's comment, a re-run's requirements, one per open question), their values passed to `run`. */
  fields?: Field[];
  run: (values: string[]) => Promise<unknown>;
}

interface Field {
  /** The field's label, also its accessible name. */
  label: string;
  initial: string;
  /** Refuse to send an empty value, saying so at the field. */
  required?: boolean;
}

/** One text field per question of a waiting phase's prompt (a list of questions, or one question). */
function questionsOf(prompt: unknown, phase: string): string[] {
  if (Array.isArray(prompt)) return prompt.map(String);
  return [typeof prompt === 'string' ? prompt : `input for ${phase}`];
}

export function RunActions({ run, onDone, phase }: { run: RunDetail; onDone: (action: string) => void; phase?: string | undefined }) {
  const queryClient = useQueryClient();
  const [pending, setPending] = useState<Action | null>(null);
  const [values, setValues] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const id = encodeURIComponent(run.run_id);
  const mutation = useMutation({
    mutationFn: (a: Action) => a.run(values),
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
      fields: [{ label: 'Requirements', initial: run.requirements, required: true }],
      run: async ([requirements = '']) => {
        const created = await api<{ run_id: string }>('POST', `/api/runs/${id}/rerun`, { from: phase, requirements });
        window.location.hash = `#/runs/${encodeURIComponent(created.run_id)}`;
        return created;
      },
    });
  }
  const budgetWaits = run.waiting_for.filter((w) => w.event === 'budget');
  if (budgetWaits.length > 0) {
    // The limit that stopped the phases: a token budget is raised in tokens, a cost budget in USD.
    const tokens = budgetWaits.every((w) => (w.prompt as { limit?: string } | undefined)?.limit === 'max_tokens');
    actions.push({
      label: 'Raise budget',
      explain: `Add ${tokens ? 'tokens' : 'USD'} to the budget that stopped ${budgetWaits.map((w) => `"${w.phase}"`).join(', ')} (the run's, or the phase's own): the waiting phases run again with the raised budget.`,
      fields: [{ label: tokens ? 'Tokens to add' : 'USD to add', initial: tokens ? '10000' : '1' }],
      run: ([c = '']) => {
        const amount = Number(c);
        if (!Number.isFinite(amount) || amount <= 0 || (tokens && !Number.isInteger(amount))) {
          return Promise.reject(new Error(`"${c}" is not ${tokens ? 'a whole number of tokens > 0, e.g. 10000' : 'an amount of USD > 0, e.g. 2 or 0.5'}`));
        }
        return api('POST', `/api/runs/${id}/events`, { type: 'budget', data: tokens ? { add_tokens: amount } : { add_usd: amount } });
      },
    });
  }
  for (const w of run.waiting_for) {
    if (w.event === 'approval') {
      actions.push({
        label: `Approve ${w.phase}`,
        explain: `Approve phase "${w.phase}"${typeof w.prompt === 'string' ? ` (${w.prompt})` : ''}: the run goes on with the phases after it.`,
        fields: [{ label: 'Comment (optional)', initial: '' }],
        run: ([c]) => api('POST', `/api/runs/${id}/events`, { type: 'approval', data: { approved: true, ...(c ? { comment: c } : {}) } }),
      });
      actions.push({
        label: `Reject ${w.phase}`,
        explain: `Reject phase "${w.phase}": the phase fails as rejected, and the workflow's error handling decides what follows.`,
        fields: [{ label: 'Comment (optional)', initial: '' }],
        run: ([c]) => api('POST', `/api/runs/${id}/events`, { type: 'approval', data: { approved: false, ...(c ? { comment: c } : {}) } }),
      });
    } else if (w.event !== 'budget' && w.event !== 'batch') {
      // A phase that asked (a planner's open questions): the answers go back as the event it waits for,
      // `{answers: {<question>: <answer>}}` as `fleet run --interactive` sends them, and the phase runs again.
      const questions = questionsOf(w.prompt, w.phase);
      actions.push({
        label: `Answer ${w.phase}`,
        explain: `Send your answers to the ${questions.length === 1 ? 'question' : `${questions.length} questions`} of phase "${w.phase}" (event "${w.event}"): the phase runs again with them in its context.`,
        fields: questions.map((q) => ({ label: q, initial: '', required: true })),
        run: (answers) => api('POST', `/api/runs/${id}/events`, { type: w.event, data: { answers: Object.fromEntries(questions.map((q, i) => [q, (answers[i] ?? '').trim()])) } }),
      });
    }
  }

  return (
    <section aria-label="Actions" className="actions">
      {actions.map((a) => (
        <button
          key={a.label}
          type="button"
          onClick={() => {
            setValues((a.fields ?? []).map((f) => f.initial));
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
          values={values}
          setValues={setValues}
          busy={mutation.isPending}
          onConfirm={() => mutation.mutate(pending)}
          onClose={() => setPending(null)}
        />
      ) : null}
    </section>
  );
}

function ConfirmDialog(props: { action: Action; values: string[]; setValues: (v: string[]) => void; busy: boolean; onConfirm: () => void; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  // Fields left empty that must not be, shown at each field once Confirm was pressed.
  const [missing, setMissing] = useState<ReadonlySet<number>>(new Set());
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  const { action, values } = props;
  const fields = action.fields ?? [];
  const confirm = () => {
    const empty = new Set(fields.flatMap((f, i) => (f.required && !(values[i] ?? '').trim() ? [i] : [])));
    setMissing(empty);
    if (empty.size === 0) props.onConfirm();
  };
  return (
    <dialog ref={ref} aria-labelledby="confirm-title" aria-describedby="confirm-explain" onClose={props.onClose} className="confirm">
      <h2 id="confirm-title">{action.label}?</h2>
      <p id="confirm-explain">{action.explain}</p>
      {fields.map((f, i) => (
        <label key={f.label}>
          {f.label}
          <textarea
            value={values[i] ?? ''}
            onChange={(e) => props.setValues(values.map((v, j) => (j === i ? e.target.value : v)))}
            rows={f.initial ? 6 : 3}
            aria-invalid={missing.has(i) ? true : undefined}
            aria-describedby={missing.has(i) ? `confirm-field-${i}-error` : undefined}
          />
          {missing.has(i) ? (
            <span id={`confirm-field-${i}-error`} role="alert" className="error">
              ✖ {f.label}: give a value
            </span>
          ) : null}
        </label>
      ))}
      <div className="dialog-buttons">
        <button type="button" onClick={confirm} disabled={props.busy}>
          Confirm
        </button>
        <button type="button" onClick={() => ref.current?.close()}>
          Go back
        </button>
      </div>
    </dialog>
  );
}
