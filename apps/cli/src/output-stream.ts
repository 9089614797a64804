/**
 * `fleet run --stream`: the output of the phases in progress, printed while the model writes it.
 * Pieces come from the run's short-lived output stream (`readPhaseOutput`), never from the shared
 * context, so what is printed is display only: a reply that then fails validation or breaks off is
 * followed by the next call's output under a new header.
 *
 * The submit tool's partial JSON is printed readably as it grows ({@link JsonTextRenderer}): keys on
 * their own lines, string values unescaped, so the coder's files appear as source text.
 */
import { createRedis, readPhaseOutput, type PhaseOutputDelta } from '@agentfleet/core';
import type { Redis } from 'ioredis';

/**
 * Renders a JSON document that arrives in pieces as indented `key: value` text, one piece at a
 * time: string values are printed unescaped (`\n` as a line break) as soon as their characters
 * arrive, array items as `- `. It never needs the rest of the document, so it works on partial JSON.
 *
 * @example
 * const r = new JsonTextRenderer();
 * r.write('{"files":[{"path":"a.js","con') + r.write('tent":"x\\ny"}]}')
 * // → '\nfiles:\n  -\n    path: a.js\n    content: x\ny'
 */
export class JsonTextRenderer {
  readonly #stack: Array<{ type: 'object' | 'array'; expectKey: boolean }> = [];
  #inString = false;
  #stringIsKey = false;
  #key = '';
  /** Pending escape sequence inside a string: '' (none), '\\', or '\\u' plus up to four hex digits. */
  #escape = '';

  /** The text to print for the next piece of the document. */
  write(piece: string): string {
    let out = '';
    for (const ch of piece) out += this.#char(ch);
    return out;
  }

  #indent(): string {
    return '  '.repeat(Math.max(0, this.#stack.length - 1));
  }

  /** Called when a value starts: array items get their `- ` marker. */
  #valueStart(): string {
    const top = this.#stack.at(-1);
    return top?.type === 'array' ? `\n${this.#indent()}- ` : '';
  }

  #char(ch: string): string {
    if (this.#inString) return this.#stringChar(ch);
    switch (ch) {
      case '"': {
        const top = this.#stack.at(-1);
        this.#inString = true;
        this.#stringIsKey = top?.type === 'object' && top.expectKey;
        this.#key = '';
        return this.#stringIsKey ? '' : this.#valueStart();
      }
      case '{':
      case '[': {
        const top = this.#stack.at(-1);
        const marker = top?.type === 'array' ? `\n${this.#indent()}-` : '';
        this.#stack.push({ type: ch === '{' ? 'object' : 'array', expectKey: ch === '{' });
        return marker;
      }
      case '}':
      case ']':
        this.#stack.pop();
        return '';
      case ':': {
        const top = this.#stack.at(-1);
        if (top) top.expectKey = false;
        return '';
      }
      case ',': {
        const top = this.#stack.at(-1);
        if (top?.type === 'object') top.expectKey = true;
        return '';
      }
      default:
        if (/\s/.test(ch)) return '';
        // Numbers, true, false, null: printed as they are (an array item gets its marker on its first character).
        return ch;
    }
  }

  #stringChar(ch: string): string {
    if (this.#escape !== '') {
      if (this.#escape === '\\') {
        if (ch === 'u') {
          this.#escape = '\\u';
          return '';
        }
        this.#escape = '';
        const decoded = ({ n: '\n', t: '\t', r: '', b: '', f: '' } as Record<string, string>)[ch] ?? ch;
        return this.#emit(decoded);
      }
      this.#escape += ch;
      if (this.#escape.length < 6) return '';
      const code = Number.parseInt(this.#escape.slice(2), 16);
      this.#escape = '';
      return this.#emit(Number.isNaN(code) ? '' : String.fromCharCode(code));
    }
    if (ch === '\\') {
      this.#escape = '\\';
      return '';
    }
    if (ch === '"') {
      this.#inString = false;
      return this.#stringIsKey ? `\n${this.#indent()}${this.#key}: ` : '';
    }
    return this.#emit(ch);
  }

  #emit(text: string): string {
    if (this.#stringIsKey) {
      this.#key += text;
      return '';
    }
    return text;
  }
}

/** What {@link followPhaseOutput} prints to. */
export interface OutputSink {
  write(text: string): void;
}

/** A running follower; {@link stop} ends it. */
export interface PhaseOutputFollower {
  /** End the current output line (before a progress line is printed). */
  breakLine(): void;
  /** Stop following and close the connection. */
  stop(): Promise<void>;
}

/**
 * Prints phase output pieces as they come: a header line per call (a phase attempt's first reply,
 * or a repair), the submit tool's JSON through a {@link JsonTextRenderer}; pieces already printed
 * (sent again after a reconnect or a re-read) are skipped by their offset.
 */
export class PhaseOutputPrinter {
  readonly #sink: OutputSink;
  readonly #received = new Map<string, number>();
  #current: string | undefined;
  #renderer = new JsonTextRenderer();
  #midLine = false;
  /** A progress line cut into the current output: the next piece says where it continues. */
  #interrupted = false;

  constructor(sink: OutputSink) {
    this.#sink = sink;
  }

  show(delta: PhaseOutputDelta): void {
    const slot = `${delta.phase}/${delta.iteration}/${delta.attempt}/${delta.call}/${delta.kind}`;
    const have = this.#received.get(slot) ?? 0;
    if (delta.offset + delta.text.length <= have) return;
    const text = delta.text.slice(Math.max(0, have - delta.offset));
    this.#received.set(slot, delta.offset + delta.text.length);
    const continued = slot === this.#current && this.#interrupted;
    if (slot !== this.#current || continued) {
      if (!continued) this.#renderer = new JsonTextRenderer();
      this.#current = slot;
      const what = delta.kind === 'thinking' ? 'thinking' : 'output';
      const which = `attempt ${delta.attempt}${delta.call > 0 ? `, repair ${delta.call}` : ''}${delta.iteration > 1 ? `, iteration ${delta.iteration}` : ''}${continued ? ', continued' : ''}`;
      this.#print(`${this.#midLine ? '\n' : ''}  ┆ ${delta.phase} ${what} (${which}):${continued ? '\n' : ''}`);
      if (delta.kind !== 'tool_input' && !continued) this.#print('\n');
    }
    this.#interrupted = false;
    this.#print(delta.kind === 'tool_input' ? this.#renderer.write(text) : text);
  }

  /** End the current output line (before a progress line is printed). */
  breakLine(): void {
    if (!this.#midLine) return;
    this.#print('\n');
    this.#interrupted = true;
  }

  #print(text: string): void {
    if (text === '') return;
    this.#sink.write(text);
    this.#midLine = !text.endsWith('\n');
  }
}

/**
 * Print the phase output of run `runId` as it is written, until {@link PhaseOutputFollower.stop},
 * reading the run's output stream from Redis (see {@link PhaseOutputPrinter}).
 *
 * @param redisUrl - a new connection is opened for the blocking reads and closed on stop.
 * @param redis - a connection for the last (non-blocking) read on stop: pieces are written before
 *   their phase's outcome is committed, so that read prints everything the run wrote.
 */
export function followPhaseOutput(redisUrl: string, redis: Redis, prefix: string, runId: string, sink: OutputSink): PhaseOutputFollower {
  const blocking: Redis = createRedis(redisUrl, { forWorker: true, name: 'fleet-run-output' });
  blocking.on('error', () => undefined);
  const printer = new PhaseOutputPrinter(sink);
  let stopped = false;
  let last = '0';
  const loop = (async () => {
    while (!stopped) {
      let pieces;
      try {
        pieces = await readPhaseOutput(blocking, prefix, runId, last, 1000, blocking);
      } catch {
        if (stopped) break;
        // Redis is away: try again shortly rather than at once (a refused read returns immediately).
        await new Promise((resolve) => setTimeout(resolve, 250).unref());
        continue;
      }
      for (const p of pieces) {
        last = p.id;
        printer.show(p.delta);
      }
    }
  })();
  return {
    breakLine: () => printer.breakLine(),
    async stop() {
      stopped = true;
      blocking.disconnect();
      await loop;
      for (const p of await readPhaseOutput(redis, prefix, runId, last).catch(() => [])) printer.show(p.delta);
      printer.breakLine();
    },
  };
}
