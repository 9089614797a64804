import { describe, expect, it } from 'vitest';
import type { PhaseOutputDelta } from '@agentfleet/core';
import { JsonTextRenderer, PhaseOutputPrinter } from './output-stream.js';

describe('JsonTextRenderer', () => {
  const doc = { files: [{ path: 'src/a.js', content: 'line 1\nline "2"\t\u00e9' }], notes: 'run it', count: 2, tags: ['x', 'y'] };
  const expected = '\nfiles: \n  -\n    path: src/a.js\n    content: line 1\nline "2"\t\u00e9\nnotes: run it\ncount: 2\ntags: \n  - x\n  - y';

  it('renders a JSON document as indented key: value text, strings unescaped', () => {
    expect(new JsonTextRenderer().write(JSON.stringify(doc))).toBe(expected);
  });

  it('gives the same text however the document is cut into pieces (escapes split across pieces included)', () => {
    // \u escapes as some servers write them, split anywhere.
    const json = JSON.stringify(doc).replace('\u00e9', '\\u00e9');
    expect(json).toContain('\\u00e9');
    const whole = new JsonTextRenderer().write(json);
    expect(whole).toBe(expected);
    for (const size of [1, 2, 3, 7]) {
      const r = new JsonTextRenderer();
      let out = '';
      for (let i = 0; i < json.length; i += size) out += r.write(json.slice(i, i + size));
      expect(out).toBe(whole);
    }
  });
});

describe('PhaseOutputPrinter', () => {
  const piece = (text: string, offset: number, extra: Partial<PhaseOutputDelta> = {}): PhaseOutputDelta => ({
    type: 'phase_output_delta', run_id: 'r', phase: 'implementation', iteration: 1, attempt: 1, call: 0, kind: 'tool_input', offset, text, at: 0, ...extra,
  });

  it('prints a header per call, skips pieces it already printed, and says where output continues after a progress line', () => {
    let out = '';
    const sink = { write: (t: string) => void (out += t) };
    const printer = new PhaseOutputPrinter(sink);
    printer.show(piece('{"notes":"fir', 0));
    printer.show(piece('{"notes":"fir', 0)); // sent again after a reconnect
    printer.breakLine();
    sink.write('  ▶ implementation (coder) started\n');
    printer.show(piece('st line"}', 13));
    printer.show(piece('{"notes":"again"}', 0, { call: 1 }));
    printer.breakLine();
    expect(out).toBe(
      '  ┆ implementation output (attempt 1):\nnotes: fir\n' +
        '  ▶ implementation (coder) started\n' +
        '  ┆ implementation output (attempt 1, continued):\nst line\n' +
        '  ┆ implementation output (attempt 1, repair 1):\nnotes: again\n',
    );
  });
});
