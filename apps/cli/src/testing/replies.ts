/**
 * Scripted agents for testing a workflow without a model: a fixture (`replies.yaml`) maps each phase
 * to what its agent answers, call after call.
 *
 * ```yaml
 * review:                      # a list: one reply per call (iteration or retry), the last output repeats
 *   - { verdict: changes_requested, findings: [{ severity: major, file: a.ts, message: no tests }], summary: needs work }
 *   - { verdict: approve, findings: [], summary: ok }
 * design:
 *   - { error: PROVIDER_OVERLOADED, times: 2 }   # the first two calls fail with that error code
 *   - { ... the design output ... }
 * coder: { output: { ... }, step_action: { type: complete } }   # an output with a step action
 * ```
 *
 * A phase without an entry, or past a last `error` entry's `times`, gets its role's offline answer. Every output is checked against its
 * role's output schema before the run starts, so a wrong fixture fails naming its path.
 */
import { BUILTIN_ROLES, type AgentRole, type RoleInput } from '@agentfleet/agents';
import { FLEET_ERROR_CODES, FleetError, estimateTokens, type FleetErrorCode, type LlmClient, type LlmRequest, type LlmResponse, type WorkflowDefinition } from '@agentfleet/core';
import { parse as parseYaml } from 'yaml';

/** One scripted answer: an output (optionally with a step action), or an error for `times` calls. */
export type ScriptedReply = { kind: 'output'; output: Record<string, unknown>; times: number } | { kind: 'error'; code: FleetErrorCode; message: string; times: number };

/** Phase name → its replies, in call order. */
export type Replies = Record<string, ScriptedReply[]>;

/** Fixture input as written: phase → a reply or a list of replies. */
export type RawReplies = Record<string, unknown>;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Read a fixture (YAML or JSON text, or an already parsed object) into replies, checking its shape.
 *
 * @param source - name for error messages (the file path).
 * @throws FleetError `INVALID_INPUT` naming the path of the first problem (`replies.yaml: design[0].times: …`).
 */
export function parseReplies(raw: string | RawReplies, source = 'replies'): Replies {
  let doc: unknown = raw;
  if (typeof raw === 'string') {
    try {
      doc = parseYaml(raw);
    } catch (err) {
      throw new FleetError('INVALID_INPUT', `${source}: not valid YAML: ${(err as Error).message}`);
    }
  }
  if (!isRecord(doc)) throw new FleetError('INVALID_INPUT', `${source}: expected a mapping of phase name to replies, e.g. "review: [{verdict: approve, ...}]"`);
  const out: Replies = {};
  for (const [phase, entry] of Object.entries(doc)) {
    const list = Array.isArray(entry) ? entry : [entry];
    if (list.length === 0) throw new FleetError('INVALID_INPUT', `${source}: ${phase}: an empty list; give at least one reply`);
    out[phase] = list.map((reply, i) => parseReply(reply, Array.isArray(entry) ? `${phase}[${i}]` : phase, source));
  }
  return out;
}

function parseReply(reply: unknown, path: string, source: string): ScriptedReply {
  const fail = (what: string): never => {
    throw new FleetError('INVALID_INPUT', `${source}: ${path}${what}`);
  };
  if (!isRecord(reply)) return fail(': expected an output object or {error: CODE, times: n}');
  const times = reply.times ?? 1;
  if (typeof times !== 'number' || !Number.isInteger(times) || times < 1) fail(`.times: expected a whole number of calls, at least 1 (got ${JSON.stringify(times)})`);
  if ('error' in reply) {
    const code = reply.error;
    if (typeof code !== 'string' || !(code in FLEET_ERROR_CODES)) fail(`.error: unknown error code ${JSON.stringify(code)}; use one of ${Object.keys(FLEET_ERROR_CODES).filter((c) => c.startsWith('PROVIDER_')).join(', ')}, …`);
    const message = reply.message ?? `scripted ${String(code)}`;
    if (typeof message !== 'string') fail('.message: expected text');
    return { kind: 'error', code: code as FleetErrorCode, message: message as string, times: times as number };
  }
  // `{output: {...}, step_action: {...}}`, or the output itself (its `step_action` kept as the agent sends it).
  if ('output' in reply) {
    if (!isRecord(reply.output)) fail('.output: expected an object');
    const { output, step_action: action } = reply as { output: Record<string, unknown>; step_action?: unknown };
    return { kind: 'output', output: action === undefined ? output : { ...output, step_action: action }, times: times as number };
  }
  const { times: _times, ...output } = reply;
  return { kind: 'output', output, times: times as number };
}

/**
 * Check every scripted output against the output schema of the role its phase runs, and that every
 * scripted phase exists.
 *
 * @throws FleetError `INVALID_INPUT` naming the fixture path and the schema problem (`review[1].verdict: …`).
 */
export function checkReplies(replies: Replies, workflow: WorkflowDefinition, roles: readonly AgentRole[], source = 'replies'): void {
  for (const [phase, list] of Object.entries(replies)) {
    const def = workflow.phases.find((p) => p.name === phase);
    if (!def) throw new FleetError('INVALID_INPUT', `${source}: ${phase}: workflow "${workflow.name}" has no phase "${phase}" (phases: ${workflow.phases.map((p) => p.name).join(', ')})`);
    if (def.kind !== 'agent') throw new FleetError('INVALID_INPUT', `${source}: ${phase}: phase "${phase}" is a ${def.kind} phase; only agent phases take scripted replies`);
    const role = roles.find((r) => r.name === def.agent);
    if (!role) continue; // the pool refuses an unknown role with its own error
    list.forEach((reply, i) => {
      if (reply.kind !== 'output') return;
      const { step_action: _action, context_updates: _updates, ...output } = reply.output;
      const path = list.length > 1 || i > 0 ? `${phase}[${i}]` : phase;
      const problems = validateAgainst(role, output);
      if (problems.length > 0) throw new FleetError('INVALID_INPUT', `${source}: ${path}: does not match the ${role.name} role's output schema: ${problems.map((p) => (p.startsWith('.') || p === '' ? `${path}${p}` : p)).join('; ')}`);
    });
  }
}

function validateAgainst(role: AgentRole, output: unknown): string[] {
  if (role.validateOutput) {
    const r = role.validateOutput(output);
    return r.ok ? [] : r.problems;
  }
  const r = role.outputSchema.safeParse(output);
  if (r.success) return [];
  return r.error.issues.map((issue) => `${issue.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('')}: ${issue.message}`);
}

/**
 * An {@link LlmClient} answering from scripted replies, per phase and call; phases without a script
 * get their role's offline answer. Counts the calls each phase and each role received.
 */
export class ScriptedLlmClient implements LlmClient {
  readonly provider = 'scripted';
  readonly model = 'scripted';
  /** Calls per phase (every call: errors and retries included). */
  readonly callsByPhase = new Map<string, number>();
  /** Calls per agent role. */
  readonly callsByRole = new Map<string, number>();
  /** Every request, in order, with its phase. */
  readonly requests: Array<{ phase: string; role: string; request: LlmRequest }> = [];

  /**
   * @param fallback - answers calls without a scripted reply (a cassette replay). @defaultValue the role's offline answer
   */
  constructor(
    private readonly replies: Replies,
    private readonly roles: readonly AgentRole[] = Object.values(BUILTIN_ROLES),
    private readonly fallback?: LlmClient,
  ) {}

  generate(request: LlmRequest): Promise<LlmResponse> {
    const input = request.inputs as unknown as RoleInput;
    const phase = input.phase;
    const n = (this.callsByPhase.get(phase) ?? 0) + 1;
    this.callsByPhase.set(phase, n);
    this.callsByRole.set(request.role, (this.callsByRole.get(request.role) ?? 0) + 1);
    this.requests.push({ phase, role: request.role, request });
    const reply = pick(this.replies[phase], n);
    let output: unknown;
    if (!reply && this.fallback) return this.fallback.generate(request);
    if (!reply) {
      const role = this.roles.find((r) => r.name === request.role);
      if (!role) return Promise.reject(new FleetError('UNKNOWN_ROLE', `no scripted reply for phase "${phase}" and no role "${request.role}" to answer offline`));
      output = role.offline(input);
    } else if (reply.kind === 'error') {
      return Promise.reject(new FleetError(reply.code, `${reply.message} (scripted for phase "${phase}", call ${n})`));
    } else {
      output = reply.output;
    }
    const text = JSON.stringify(output);
    return Promise.resolve({ output, usage: { input_tokens: estimateTokens(request.system), output_tokens: estimateTokens(text) }, model: this.model, id: `scripted-${phase}-${n}`, stopReason: 'tool_use' });
  }
}

/**
 * The reply for call `n` (1-based): replies cover `times` calls each; past the list, the last output
 * repeats, and after a last error entry the role's offline answer is used (undefined here).
 */
function pick(list: readonly ScriptedReply[] | undefined, n: number): ScriptedReply | undefined {
  if (!list || list.length === 0) return undefined;
  let left = n;
  for (const reply of list) {
    if (left <= reply.times) return reply;
    left -= reply.times;
  }
  const last = list[list.length - 1];
  return last?.kind === 'output' ? last : undefined;
}
