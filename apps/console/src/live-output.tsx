/**
 * The output of the phases in progress, as the model writes it (the run's `phase_output_delta`
 * events). Display only: the phase panel shows the validated output once the phase completes.
 */

/** Per phase: its latest attempt's output so far, by kind. */
export type LiveOutputs = Map<string, { phase: string; iteration: number; attempt: number; call: number; text: { text: string; tool_input: string; thinking: string } }>;

export function LiveOutput({ live, running }: { live: LiveOutputs; running: Set<string> }) {
  const shown = [...live.values()].filter((o) => running.has(o.phase));
  if (shown.length === 0) return null;
  return (
    <section aria-label="Live output" className="live-output">
      <h2>Live output</h2>
      {shown.map((o) => (
        <div key={o.phase}>
          <h3>
            {o.phase} · attempt {o.attempt}
            {o.call > 0 ? ` · repair ${o.call}` : ''}
          </h3>
          {o.text.thinking ? (
            <details>
              <summary>Thinking</summary>
              <pre aria-label={`Thinking of ${o.phase}`}>{o.text.thinking}</pre>
            </details>
          ) : null}
          <pre aria-label={`Live output of ${o.phase}`} aria-live="polite" className="live-text">
            {o.text.tool_input || o.text.text}
          </pre>
        </div>
      ))}
    </section>
  );
}
