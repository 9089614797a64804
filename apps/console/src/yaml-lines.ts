/**
 * Where a problem with a workflow's YAML is: the line (1-based) and column of a syntax error, or of
 * the field an API issue path names (`phases[1].depends_on[0]`), read from the `yaml` library's
 * document with source ranges.
 */
import { LineCounter, isNode, parseDocument, type Document } from 'yaml';

/** One problem, placed at a line of the text when it can be. */
export interface YamlProblem {
  /** 1-based line, or null when nothing in the text can be pointed at. */
  line: number | null;
  /** The field path the API named (`phases[1].depends_on[0]`), or null for a syntax error. */
  path: string | null;
  message: string;
}

/** Parsed YAML text: the value, or the syntax errors with their lines; `locate` places an API issue path. */
export interface ParsedYaml {
  value: unknown;
  errors: YamlProblem[];
  /** The line of the node at `path`, else of its nearest ancestor present in the text (a missing field: its parent), else null. */
  locate: (path: string) => number | null;
}

/** `phases[1].depends_on[0]` → `['phases', 1, 'depends_on', 0]`; '' → []. */
export function pathSegments(path: string): Array<string | number> {
  const out: Array<string | number> = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) {
    if (m[2] !== undefined) out.push(Number(m[2]));
    else if (m[1] !== undefined) out.push(m[1]);
  }
  return out;
}

/** Parse `text` as YAML (duplicate keys refused, as the manager's parser refuses them). */
export function parseYaml(text: string): ParsedYaml {
  const lines = new LineCounter();
  const doc: Document = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  const errors = doc.errors.map((e) => ({
    line: e.linePos?.[0].line ?? null,
    path: null,
    // The first line of the message; the rest is an excerpt of the text with a caret.
    message: (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, ''),
  }));
  return {
    value: errors.length === 0 ? (doc.toJS() as unknown) : undefined,
    errors,
    locate: (path) => {
      const segments = pathSegments(path);
      for (let n = segments.length; n >= 0; n--) {
        const node: unknown = n === 0 ? doc.contents : doc.getIn(segments.slice(0, n), true);
        if (isNode(node) && node.range) return lines.linePos(node.range[0]).line;
      }
      return null;
    },
  };
}
