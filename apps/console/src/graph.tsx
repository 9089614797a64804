/**
 * The workflow graph of a run: phases as nodes, `depends_on` as edges, laid out left to right by
 * dagre. Each node shows its live status as an icon and a word (attempt, error code, skip reason,
 * elapsed time, iteration) and is a button that opens the phase panel.
 */
import dagre from '@dagrejs/dagre';
import { Background, Controls, Handle, Position, ReactFlow, type Edge, type Node, type NodeProps } from '@xyflow/react';
import { useMemo } from 'react';
import '@xyflow/react/dist/style.css';
import type { PhaseResult, RunWorkflowPhase } from './api.js';
import { duration } from './format.js';
import { StatusBadge } from './status.js';

const NODE_WIDTH = 230;
const NODE_HEIGHT = 92;

export interface PhaseNodeData extends Record<string, unknown> {
  phase: RunWorkflowPhase;
  result: PhaseResult | undefined;
  /** When the running attempt started (epoch ms), for the elapsed time. */
  startedAt: number | undefined;
  now: number;
  selected: boolean;
  /** False on a template's graph (no run, so no status). */
  showStatus: boolean;
  onSelect: (name: string) => void;
}

/** What a node says after its status word: the attempt, the error code, the reason, the elapsed time. */
export function statusDetail(result: PhaseResult | undefined, startedAt: number | undefined, now: number): string | undefined {
  if (!result) return undefined;
  switch (result.status) {
    case 'running':
      return startedAt ? `${duration(now - startedAt)}${result.attempts > 1 ? `, attempt ${result.attempts}` : ''}` : undefined;
    case 'retrying':
      return `attempt ${result.attempts + 1}${result.error ? ` after ${result.error.code}` : ''}`;
    case 'failed':
      return result.error?.code;
    case 'skipped':
    case 'cancelled':
      return result.reason;
    case 'completed':
      return result.duration_ms !== null ? duration(result.duration_ms) : undefined;
    default:
      return undefined;
  }
}

function PhaseNode({ data }: NodeProps<Node<PhaseNodeData>>) {
  const { phase, result, startedAt, now, selected, showStatus, onSelect } = data;
  const status = result?.status ?? 'pending';
  const detail = statusDetail(result, startedAt, now);
  const iterations = result?.iterations ?? 0;
  return (
    <div className={`phase-node status-border-${status}${selected ? ' selected' : ''}`}>
      <Handle type="target" position={Position.Left} />
      <button
        type="button"
        className="phase-node-button nodrag"
        aria-pressed={selected}
        aria-label={
          showStatus ? `${phase.name}: ${status}${detail ? ` (${detail})` : ''}${iterations > 1 ? `, iteration ${iterations}` : ''}` : `${phase.name} (${phase.kind === 'agent' ? phase.agent : phase.kind})`
        }
        onClick={() => onSelect(phase.name)}
      >
        <span className="phase-name">{phase.name}</span>
        <span className="phase-agent muted">{phase.kind === 'agent' ? phase.agent : phase.kind}</span>
        {showStatus ? <StatusBadge status={status} detail={detail} /> : null}
        {iterations > 1 ? <span className="iterations">iteration {iterations}{phase.max_iterations > 1 ? ` of ${phase.max_iterations}` : ''}</span> : null}
      </button>
      <Handle type="source" position={Position.Right} />
    </div>
  );
}

const nodeTypes = { phase: PhaseNode };

/**
 * Over this many phases the layout ranks by longest path and skips dagre's search for the best
 * ordering: dagre's default (network simplex) draws slightly tighter edges, but on a 50-phase graph
 * it takes about twice as long, and the page waits for the layout before it shows the graph.
 */
const LARGE_GRAPH = 20;

/** Node positions from dagre (left to right), computed once per workflow. */
export function layout(phases: readonly RunWorkflowPhase[]): Map<string, { x: number; y: number }> {
  const large = phases.length > LARGE_GRAPH;
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 30, ranksep: 70, ...(large ? { ranker: 'longest-path' } : {}) });
  g.setDefaultEdgeLabel(() => ({}));
  for (const p of phases) g.setNode(p.name, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const p of phases) for (const d of p.depends_on) g.setEdge(d.phase, p.name);
  dagre.layout(g, large ? { disableOptimalOrderHeuristic: true } : undefined);
  const out = new Map<string, { x: number; y: number }>();
  for (const p of phases) {
    const n = g.node(p.name) as { x: number; y: number };
    out.set(p.name, { x: n.x - NODE_WIDTH / 2, y: n.y - NODE_HEIGHT / 2 });
  }
  return out;
}

export function WorkflowGraph(props: {
  phases: RunWorkflowPhase[];
  results: Map<string, PhaseResult>;
  startedAt: Map<string, number>;
  now: number;
  selected: string | undefined;
  onSelect: (name: string) => void;
  /** Show each phase's live status. @defaultValue true */
  showStatus?: boolean;
}) {
  const { phases, results, startedAt, now, selected, onSelect } = props;
  const showStatus = props.showStatus ?? true;
  const positions = useMemo(() => layout(phases), [phases]);
  // Kept while their inputs are the same, so React Flow has nothing to compare on unrelated renders.
  const nodes = useMemo(
    (): Array<Node<PhaseNodeData>> =>
      phases.map((p) => ({
        id: p.name,
        type: 'phase',
        position: positions.get(p.name) ?? { x: 0, y: 0 },
        data: { phase: p, result: results.get(p.name), startedAt: startedAt.get(p.name), now, selected: p.name === selected, showStatus, onSelect },
        draggable: false,
        connectable: false,
        focusable: false,
        width: NODE_WIDTH,
        height: NODE_HEIGHT,
      })),
    [phases, positions, results, startedAt, now, selected, showStatus, onSelect],
  );
  const edges = useMemo(
    (): Edge[] =>
      phases.flatMap((p) =>
        p.depends_on.map((d) => ({
          id: `${d.phase}->${p.name}`,
          source: d.phase,
          target: p.name,
          animated: results.get(p.name)?.status === 'running',
          ...(d.optional ? { style: { strokeDasharray: '4 3' } } : {}),
        })),
      ),
    [phases, results],
  );
  return (
    <div className="graph" style={{ height: Math.min(520, Math.max(220, (Math.max(...[...positions.values()].map((v) => v.y)) || 0) + NODE_HEIGHT + 60)) }}>
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        fitView
        nodesDraggable={false}
        nodesConnectable={false}
        elementsSelectable={false}
        // A click handler keeps nodes interactive (React Flow drops pointer events on nodes that are neither draggable nor selectable).
        onNodeClick={(_event, n) => onSelect(n.id)}
        proOptions={{ hideAttribution: true }}
        minZoom={0.2}
      >
        <Background />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
