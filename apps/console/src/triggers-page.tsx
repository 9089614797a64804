/**
 * Triggers: the inbound triggers an admin defined (`GET /api/triggers`): the endpoint each one
 * answers, the workflow it starts, how a delivery authenticates and how its body maps into the run.
 * Defining and removing triggers is done with `fleet triggers` or `PUT /api/triggers/:name`; secrets
 * are never shown. Other keys get the API's answer (admin keys only).
 */
import { useQuery } from '@tanstack/react-query';
import { ApiError, api } from './api.js';

interface TriggerRow {
  name: string;
  workflow: string;
  requirements_template: string;
  variables: Record<string, string>;
  debounce: { key: string; period_s: number } | null;
  description: string;
  has_secret: boolean;
  updated_at: string;
}

export function TriggersPage() {
  const rows = useQuery({ queryKey: ['triggers'], queryFn: () => api<{ items: TriggerRow[] }>('GET', '/api/triggers') });
  return (
    <section aria-labelledby="triggers-title">
      <h1 id="triggers-title">Triggers</h1>
      <p className="hint">A POST of JSON to a trigger's endpoint starts a run, signed with the trigger's secret or sent with an API key. Define them with `fleet triggers add`.</p>
      {rows.error ? (
        <p role="alert" className="error">
          {rows.error instanceof ApiError ? rows.error.apiMessage : rows.error.message}
        </p>
      ) : null}
      {rows.data && rows.data.items.length === 0 ? <p>No triggers yet.</p> : null}
      <table>
        <caption className="visually-hidden">Inbound triggers</caption>
        <thead>
          <tr>
            <th scope="col">Trigger</th>
            <th scope="col">Endpoint</th>
            <th scope="col">Workflow</th>
            <th scope="col">Accepts</th>
            <th scope="col">Requirements</th>
            <th scope="col">Variables</th>
            <th scope="col">Debounce</th>
          </tr>
        </thead>
        <tbody>
          {rows.data?.items.map((t) => (
            <tr key={t.name}>
              <th scope="row">{t.name}</th>
              <td>
                <code>POST /api/triggers/{t.name}</code>
              </td>
              <td>{t.workflow}</td>
              <td>{t.has_secret ? 'signed deliveries and API keys' : 'API keys only'}</td>
              <td>
                <code>{t.requirements_template}</code>
              </td>
              <td>
                {Object.entries(t.variables).map(([k, v]) => (
                  <div key={k}>
                    <code>
                      {k} = {v}
                    </code>
                  </div>
                ))}
              </td>
              <td>{t.debounce ? `${t.debounce.key} within ${t.debounce.period_s} s` : 'none'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
