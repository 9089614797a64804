/**
 * Register a workflow template from its YAML: **Validate** checks it as registering would
 * (`POST /api/workflow-templates/validate`), **Register** stores it as version 1
 * (`POST /api/workflow-templates`). YAML syntax errors are found here, before anything is sent;
 * every problem is shown with the line of the text and the field it names, and can be jumped to.
 */
import { useMutation } from '@tanstack/react-query';
import { useRef, useState } from 'react';
import { ApiError, api } from './api.js';
import { parseYaml, type YamlProblem } from './yaml-lines.js';

const EXAMPLE = `name: my-workflow
description: Plan, then design
agents: [planner, designer]
phases:
  - name: planning
    agent: planner
    timeout: 120
  - name: design
    agent: designer
    depends_on: [planning]
    timeout: 180
`;

type Outcome = { kind: 'valid' | 'registered'; name: string; phases: number } | { kind: 'problems'; problems: YamlProblem[] };

/** The API's refusal as problems placed at lines: one per `issues[]` entry, else its message (a taken name at `name`). */
function apiProblems(err: unknown, locate: (path: string) => number | null): YamlProblem[] {
  if (!(err instanceof ApiError)) return [{ line: null, path: null, message: (err as Error).message }];
  let body: { error?: { code?: string; message?: string; issues?: Array<{ path: string; message: string }> } } = {};
  try {
    body = JSON.parse(err.body) as typeof body;
  } catch {
    // not the API's error JSON: shown as it came
  }
  const issues = body.error?.issues;
  if (issues && issues.length > 0) {
    // Each path names the field itself (an unknown field's path ends with it).
    return issues.map((i) => ({ line: locate(i.path), path: i.path, message: i.message }));
  }
  const field = body.error?.code === 'CONFLICT' ? 'name' : null;
  return [{ line: field ? locate(field) : null, path: field, message: err.apiMessage }];
}

export function RegisterWorkflow({ onRegistered }: { onRegistered: (name: string) => void }) {
  const [text, setText] = useState(EXAMPLE);
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const area = useRef<HTMLTextAreaElement>(null);
  const send = useMutation({
    mutationFn: async (kind: 'valid' | 'registered'): Promise<Outcome> => {
      const parsed = parseYaml(text);
      if (parsed.errors.length > 0) return { kind: 'problems', problems: parsed.errors };
      if (typeof parsed.value !== 'object' || parsed.value === null || Array.isArray(parsed.value)) {
        return { kind: 'problems', problems: [{ line: 1, path: null, message: 'the YAML must be a mapping with name, agents and phases (see the example)' }] };
      }
      try {
        if (kind === 'valid') {
          const v = await api<{ name: string; phases: number }>('POST', '/api/workflow-templates/validate', parsed.value);
          return { kind, name: v.name, phases: v.phases };
        }
        const t = await api<{ name: string; phases: number }>('POST', '/api/workflow-templates', parsed.value);
        return { kind, name: t.name, phases: t.phases };
      } catch (err) {
        return { kind: 'problems', problems: apiProblems(err, parsed.locate) };
      }
    },
    onSuccess: (o) => {
      setOutcome(o);
      if (o.kind === 'registered') onRegistered(o.name);
    },
  });

  /** Put the caret on `line` (1-based) of the text, its line selected, and focus the text. */
  const goTo = (line: number) => {
    const el = area.current;
    if (!el) return;
    const lines = text.split('\n');
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    el.focus();
    el.setSelectionRange(start, start + (lines[line - 1]?.length ?? 0));
  };

  const problems = outcome?.kind === 'problems' ? outcome.problems : [];
  const badLines = new Set(problems.flatMap((p) => (p.line === null ? [] : [p.line])));
  const lineCount = text.split('\n').length;
  return (
    <section aria-labelledby="register-title" className="register-workflow">
      <h2 id="register-title">Register a workflow</h2>
      <p className="muted">
        A workflow in the file format (name, description, agents, phases, error_handling, output, variables) and the template fields (category, tags, …); see the workflow format in the docs. Needs
        an admin key.
      </p>
      <label htmlFor="workflow-yaml">Workflow YAML</label>
      <div className="yaml-editor">
        <pre className="yaml-gutter" aria-hidden="true">
          {Array.from({ length: lineCount }, (_, i) => `${badLines.has(i + 1) ? '✖' : ' '}${String(i + 1).padStart(3)}`).join('\n')}
        </pre>
        <textarea
          id="workflow-yaml"
          ref={area}
          value={text}
          onChange={(e) => setText(e.target.value)}
          // As tall as the text, so every line stays beside its number.
          rows={Math.max(12, lineCount + 1)}
          spellCheck={false}
          wrap="off"
          aria-invalid={problems.length > 0 ? true : undefined}
          aria-describedby={problems.length > 0 ? 'workflow-yaml-problems' : undefined}
        />
      </div>
      <div className="form-buttons">
        <button type="button" disabled={send.isPending} onClick={() => send.mutate('valid')}>
          Validate
        </button>
        <button type="button" disabled={send.isPending} onClick={() => send.mutate('registered')}>
          Register
        </button>
      </div>
      {outcome && outcome.kind !== 'problems' ? (
        <p role="status" className="notice">
          ✔ {outcome.kind === 'valid' ? `${outcome.name} is valid (${outcome.phases} phases): it would register as version 1` : `Registered ${outcome.name} v1 (${outcome.phases} phases)`}
        </p>
      ) : null}
      {problems.length > 0 ? (
        <div role="alert">
          <ul id="workflow-yaml-problems" aria-label="Problems" className="problems">
            {problems.map((p, i) => (
              <li key={i} className="error">
                ✖ {p.line !== null ? `Line ${p.line}` : 'The workflow'}
                {p.path ? <span className="mono">, {p.path}</span> : null}: {p.message}{' '}
                {p.line !== null ? (
                  <button type="button" onClick={() => goTo(p.line as number)}>
                    Go to line {p.line}
                  </button>
                ) : null}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
    </section>
  );
}
