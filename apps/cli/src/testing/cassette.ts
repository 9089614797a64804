/**
 * Record and replay a run's model calls (a cassette, one JSON line per call).
 *
 * `fleet run --record cassette.jsonl` stores every model request and reply (API keys redacted);
 * `fleet test <workflow> --replay cassette.jsonl` answers each call from the cassette, and fails with
 * the first request that differs from the recorded one, shown as a diff. A prompt change is then
 * tested without paying for tokens.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { FleetError, toFleetError, type LlmClient, type LlmRequest, type LlmResponse, type SerializedFleetError } from '@agentfleet/core';

/** One recorded call. */
export interface CassetteEntry {
  phase: string;
  role: string;
  /** The phase's n-th call (1-based), retries and iterations included. */
  call: number;
  requirements: string;
  request: { system: string; messages: unknown; tool: string; model?: string | undefined };
  reply?: Pick<LlmResponse, 'output' | 'usage' | 'model' | 'stopReason'> | undefined;
  error?: SerializedFleetError | undefined;
}

/** Key-shaped strings (`sk-…`, `sk-ant-…`, bearer tokens) replaced before anything is written. */
function redact(text: string): string {
  return text.replace(/\b(sk-[A-Za-z0-9_-]{8,}|Bearer\s+[A-Za-z0-9._-]{8,})/g, '[REDACTED]');
}

interface RoleInputLike {
  phase?: string;
  requirements?: string;
}

function describe(request: LlmRequest): CassetteEntry['request'] {
  return { system: request.system, messages: request.messages, tool: request.tool.name, ...(request.model !== undefined ? { model: request.model } : {}) };
}

/**
 * An {@link LlmClient} that passes every call to `inner` and appends it to the cassette at `path`.
 * Clients of several roles record into one cassette by sharing `calls` (calls so far per phase).
 */
export class RecordingLlmClient implements LlmClient {
  readonly provider: string;
  readonly model: string;

  constructor(
    private readonly inner: LlmClient,
    private readonly path: string,
    private readonly calls: Map<string, number> = new Map(),
  ) {
    this.provider = inner.provider;
    this.model = inner.model;
  }

  async generate(request: LlmRequest): Promise<LlmResponse> {
    const input = request.inputs as RoleInputLike;
    const phase = input.phase ?? request.role;
    const call = (this.calls.get(phase) ?? 0) + 1;
    this.calls.set(phase, call);
    const base = { phase, role: request.role, call, requirements: input.requirements ?? '', request: describe(request) };
    try {
      const reply = await this.inner.generate(request);
      this.#write({ ...base, reply: { output: reply.output, usage: reply.usage, model: reply.model, stopReason: reply.stopReason } });
      return reply;
    } catch (err) {
      this.#write({ ...base, error: toFleetError(err).toJSON() });
      throw err;
    }
  }

  #write(entry: CassetteEntry): void {
    appendFileSync(this.path, redact(JSON.stringify(entry)) + '\n');
  }
}

/**
 * Read a cassette.
 * @throws FleetError `INVALID_INPUT` naming the file and line of a malformed entry.
 */
export function readCassette(path: string): CassetteEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new FleetError('INVALID_INPUT', `--replay: cannot read ${path}: ${(err as Error).message}`);
  }
  return text
    .split('\n')
    .map((line, i) => ({ line: line.trim(), n: i + 1 }))
    .filter(({ line }) => line !== '')
    .map(({ line, n }) => {
      try {
        const entry = JSON.parse(line) as CassetteEntry;
        if (typeof entry.phase !== 'string' || typeof entry.call !== 'number' || typeof entry.request?.system !== 'string') throw new Error('missing phase, call or request');
        return entry;
      } catch (err) {
        throw new FleetError('INVALID_INPUT', `${path}:${n}: not a cassette entry (${(err as Error).message})`);
      }
    });
}

/** The first request that did not match the cassette. */
export interface ReplayMismatch {
  phase: string;
  call: number;
  /** `- recorded` / `+ now` lines around the first difference. */
  diff: string;
}

/** Lines of a request as compared: the system prompt, then each message's text. */
function requestLines(request: CassetteEntry['request']): string[] {
  const messages = JSON.parse(JSON.stringify(request.messages ?? [])) as Array<{ role?: string; content?: unknown }>;
  const lines = [`tool: ${request.tool}`, ...request.system.split('\n').map((l) => `system: ${l}`)];
  for (const [i, m] of messages.entries()) {
    // Text blocks line by line (a changed prompt shows as changed lines); other blocks as JSON.
    const blocks = typeof m.content === 'string' ? [m.content] : Array.isArray(m.content) ? m.content : [m.content];
    const texts = blocks.map((b: unknown) => (typeof b === 'string' ? b : b && typeof b === 'object' && typeof (b as { text?: unknown }).text === 'string' ? (b as { text: string }).text : JSON.stringify(b)));
    for (const text of texts) lines.push(...text.split('\n').map((l) => `messages[${i}] ${m.role ?? ''}: ${l}`));
  }
  return lines;
}

/** A short diff: the lines before the first difference, then recorded (-) against now (+). */
export function diffRequests(recorded: CassetteEntry['request'], now: CassetteEntry['request']): string | undefined {
  const a = requestLines(recorded);
  const b = requestLines(now);
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  if (i === a.length && i === b.length) return undefined;
  // The end of the difference: the longest common tail after i.
  let ta = a.length;
  let tb = b.length;
  while (ta > i && tb > i && a[ta - 1] === b[tb - 1]) {
    ta--;
    tb--;
  }
  const context = a.slice(Math.max(0, i - 2), i).map((l) => `  ${l}`);
  const removed = a.slice(i, Math.min(ta, i + 10)).map((l) => `- ${l}`);
  const added = b.slice(i, Math.min(tb, i + 10)).map((l) => `+ ${l}`);
  return [...context, ...removed, ...added].join('\n');
}

/**
 * An {@link LlmClient} answering from a cassette. A request that differs from the recorded one (or
 * a call the cassette has not got) fails its phase at once (`PROVIDER_BAD_REQUEST`, not retried);
 * {@link mismatch} holds the first one.
 */
export class ReplayLlmClient implements LlmClient {
  readonly provider = 'replay';
  readonly model = 'replay';
  mismatch: ReplayMismatch | undefined;
  readonly #calls = new Map<string, number>();

  constructor(private readonly entries: readonly CassetteEntry[]) {}

  generate(request: LlmRequest): Promise<LlmResponse> {
    const input = request.inputs as RoleInputLike;
    const phase = input.phase ?? request.role;
    const call = (this.#calls.get(phase) ?? 0) + 1;
    this.#calls.set(phase, call);
    const entry = this.entries.find((e) => e.phase === phase && e.call === call);
    const now = describe(request);
    const diff = entry ? diffRequests(entry.request, JSON.parse(redact(JSON.stringify(now))) as CassetteEntry['request']) : `+ a call the cassette has not got (phase "${phase}", call ${call})`;
    if (diff !== undefined) {
      this.mismatch ??= { phase, call, diff };
      return Promise.reject(new FleetError('PROVIDER_BAD_REQUEST', `phase "${phase}" call ${call}: the request differs from the recorded one`, { retryable: false }));
    }
    if (entry!.error) return Promise.reject(new FleetError(entry!.error.code, entry!.error.message, { retryable: entry!.error.retryable }));
    const reply = entry!.reply!;
    return Promise.resolve({ ...reply, id: `replay-${phase}-${call}` });
  }
}
