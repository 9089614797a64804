/**
 * Workflows: built-in and registered templates (`GET /api/workflow-templates`), the graph,
 * phases and versions of the one chosen (`GET /api/workflow-templates/:name`), and a form to
 * validate and register a new one.
 */
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { ApiError, api, type RunWorkflowPhase } from './api.js';
import { duration } from './format.js';
import { WorkflowGraph } from './graph.js';
import { RegisterWorkflow } from './register-workflow.js';

interface TemplateSummary {
  name: string;
  version: string;
  is_active: boolean;
  builtin: boolean;
  description: string;
  category: string | null;
  tags: string[];
  phases: number;
}

interface CompiledPhase {
  name: string;
  kind: RunWorkflowPhase['kind'];
  agent: string;
  description?: string;
  dependsOn?: Array<{ phase: string; optional: boolean }>;
  maxIterations?: number;
  retries?: number;
  timeoutMs?: number;
  instructions?: string;
  input?: string;
  workflow?: string;
  tool?: string;
}

interface TemplateDetail extends TemplateSummary {
  versions: number;
  definition: { phases?: CompiledPhase[] } & Record<string, unknown>;
}

/** The compiled definition's phases in the shape the graph draws. */
function graphPhases(d: TemplateDetail): RunWorkflowPhase[] {
  return (d.definition.phases ?? []).map((p) => ({
    name: p.name,
    kind: p.kind,
    agent: p.agent,
    description: p.description ?? '',
    depends_on: p.dependsOn ?? [],
    max_iterations: p.maxIterations ?? 1,
    retries: p.retries ?? 0,
    timeout_ms: p.timeoutMs ?? 0,
    instructions: p.instructions ?? null,
    input: p.input ?? null,
    workflow: p.workflow ?? null,
    tool: p.tool ?? null,
  }));
}

const message = (err: Error) => (err instanceof ApiError ? err.apiMessage : err.message);

export function WorkflowsPage() {
  const queryClient = useQueryClient();
  const [chosen, setChosen] = useState<string | undefined>(undefined);
  const list = useQuery({ queryKey: ['templates'], queryFn: () => api<{ items: TemplateSummary[] }>('GET', '/api/workflow-templates') });
  const detail = useQuery({
    queryKey: ['template', chosen],
    queryFn: () => api<TemplateDetail>('GET', `/api/workflow-templates/${encodeURIComponent(chosen ?? '')}`),
    enabled: chosen !== undefined,
  });
  return (
    <section aria-labelledby="workflows-title">
      <h1 id="workflows-title">Workflows</h1>
      {list.error ? (
        <p role="alert" className="error">
          {message(list.error)}
        </p>
      ) : null}
      <table>
        <caption className="visually-hidden">Workflow templates</caption>
        <thead>
          <tr>
            <th scope="col">Workflow</th>
            <th scope="col">Version</th>
            <th scope="col">Kind</th>
            <th scope="col">Phases</th>
            <th scope="col">Active</th>
            <th scope="col">Description</th>
          </tr>
        </thead>
        <tbody>
          {list.data?.items.map((t) => (
            <tr key={t.name}>
              <td>
                <button type="button" aria-pressed={chosen === t.name} onClick={() => setChosen(t.name)}>
                  {t.name}
                </button>
              </td>
              <td>{t.version}</td>
              <td>{t.builtin ? 'built-in' : 'registered'}</td>
              <td>{t.phases}</td>
              <td>{t.is_active ? 'yes' : 'no (deactivated)'}</td>
              <td>{t.description}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {detail.error ? (
        <p role="alert" className="error">
          {message(detail.error)}
        </p>
      ) : null}
      {detail.data ? (
        <section aria-label={`Workflow ${detail.data.name}`}>
          <h2>
            {detail.data.name} v{detail.data.version} <span className="muted">({detail.data.versions} stored versions)</span>
          </h2>
          <section aria-label="Workflow graph">
            <WorkflowGraph phases={graphPhases(detail.data)} results={new Map()} startedAt={new Map()} now={0} selected={undefined} onSelect={() => undefined} showStatus={false} />
          </section>
          <table>
            <caption>Phases</caption>
            <thead>
              <tr>
                <th scope="col">Phase</th>
                <th scope="col">Kind / role</th>
                <th scope="col">Depends on</th>
                <th scope="col">Timeout</th>
                <th scope="col">Retries</th>
                <th scope="col">Max iterations</th>
              </tr>
            </thead>
            <tbody>
              {graphPhases(detail.data).map((p) => (
                <tr key={p.name}>
                  <td>{p.name}</td>
                  <td>{p.kind === 'agent' ? p.agent : p.kind}</td>
                  <td>{p.depends_on.map((d) => `${d.phase}${d.optional ? ' (optional)' : ''}`).join(', ') || '—'}</td>
                  <td>{duration(p.timeout_ms)}</td>
                  <td>{p.retries}</td>
                  <td>{p.max_iterations}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ) : null}
      <RegisterWorkflow
        onRegistered={(name) => {
          void queryClient.invalidateQueries({ queryKey: ['templates'] });
          setChosen(name);
        }}
      />
    </section>
  );
}
