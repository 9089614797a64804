/**
 * The manager's long-lived spans: one `invoke_workflow <workflow>` span per run and one
 * `phase <name>` span per phase iteration, kept in memory from start to end. A phase's job carries
 * the context of the `send <queue>` producer span, so the worker's spans join the run's trace.
 *
 * A manager that restarts mid-run loses the span objects it held; the run's context is also stored
 * in Redis (`trace` field of the run hash), so later phases still join the same trace, and the run
 * span is re-created at the end with its recorded start time.
 *
 * A phase that depends on others links to their spans (fan-in): each phase span's carrier is stored
 * in the run hash (`RunStore.setPhaseTrace`), so the links hold across manager replicas.
 */
import {
  FleetAttributes,
  GenAiAttributes,
  GenAiOperationNames,
  extractTraceContext,
  getTracer,
  injectTraceContext,
  type RunEvent,
  type RunMeta,
  type RunStore,
} from '@agentfleet/core';
import { SpanKind, SpanStatusCode, trace, type Context, type Link, type Span } from '@opentelemetry/api';

export class RunSpans {
  /** @param store - where phase span carriers are kept for fan-in links; without it, no links. */
  constructor(private readonly store?: RunStore) {}

  private readonly runs = new Map<string, Span>();
  private readonly phases = new Map<string, Span>();

  /** Context under which a run's phase spans start; from memory, else from the stored carrier. */
  runContext(runId: string, storedCarrier: Record<string, string> | undefined): Context {
    const span = this.runs.get(runId);
    if (span) return trace.setSpan(extractTraceContext({}), span);
    return extractTraceContext(storedCarrier);
  }

  /** Start the run span; returns its carrier to store with the run. */
  startRun(meta: RunMeta, at: number): Record<string, string> {
    const span = getTracer().startSpan(
      `${GenAiOperationNames.InvokeWorkflow} ${meta.workflow.name}`,
      {
        kind: SpanKind.INTERNAL,
        startTime: at,
        attributes: {
          [GenAiAttributes.OperationName]: GenAiOperationNames.InvokeWorkflow,
          [GenAiAttributes.WorkflowName]: meta.workflow.name,
          [FleetAttributes.RunId]: meta.run_id,
          [FleetAttributes.WorkflowName]: meta.workflow.name,
          [FleetAttributes.WorkflowVersion]: meta.workflow.version,
        },
      },
      extractTraceContext(meta.trace),
    );
    this.runs.set(meta.run_id, span);
    return injectTraceContext(trace.setSpan(extractTraceContext({}), span));
  }

  /**
   * Start the span of a phase iteration under the run's context and return its context. When the
   * manager was given the run store, the span links to the latest span of each phase it depends on
   * (a fan-in phase links to all of them), and its own carrier is stored for the phases after it.
   */
  async startPhase(
    runId: string,
    runCtx: Context,
    phase: string,
    role: string,
    iteration: number,
    at: number,
    deps: readonly string[] = [],
  ): Promise<Context> {
    const carriers: Record<string, Record<string, string>> =
      this.store && deps.length > 0 ? await this.store.getPhaseTraces(runId, deps).catch(() => ({})) : {};
    const links: Link[] = [];
    for (const [dep, carrier] of Object.entries(carriers)) {
      const linked = trace.getSpanContext(extractTraceContext(carrier));
      if (linked) links.push({ context: linked, attributes: { [FleetAttributes.PhaseName]: dep } });
    }
    const span = getTracer().startSpan(
      `phase ${phase}`,
      {
        kind: SpanKind.INTERNAL,
        startTime: at,
        links,
        attributes: {
          [FleetAttributes.RunId]: runId,
          [FleetAttributes.PhaseName]: phase,
          [FleetAttributes.PhaseIteration]: iteration,
          [FleetAttributes.AgentRole]: role,
        },
      },
      runCtx,
    );
    this.phases.set(`${runId}.${phase}`, span);
    const ctx = trace.setSpan(runCtx, span);
    const carrier = injectTraceContext(ctx);
    if (this.store && Object.keys(carrier).length > 0) await this.store.setPhaseTrace(runId, phase, carrier).catch(() => undefined);
    return ctx;
  }

  /** End spans that the committed events close. */
  onEvents(runId: string, events: readonly RunEvent[]): void {
    for (const e of events) {
      switch (e.type) {
        case 'phase_completed':
        case 'phase_failed':
        case 'phase_cancelled':
        case 'phase_skipped': {
          const key = `${runId}.${e.phase}`;
          const span = this.phases.get(key);
          if (!span) break;
          if (e.type === 'phase_failed') span.setStatus({ code: SpanStatusCode.ERROR, message: e.error.message });
          if (e.type === 'phase_completed') span.setAttribute(FleetAttributes.PhaseAttempt, e.attempt);
          span.end(e.at);
          this.phases.delete(key);
          break;
        }
        case 'run_finished': {
          const span = this.runs.get(runId);
          if (!span) break;
          if (e.status !== 'completed') span.setStatus({ code: SpanStatusCode.ERROR, message: `run ${e.status}` });
          span.end(e.at);
          this.runs.delete(runId);
          break;
        }
        default:
          // Other events open or close no span.
          break;
      }
    }
  }
}
