import { describe, expect, it } from 'vitest';
import { compileWorkflow } from '../workflow/compile.js';
import { listBuiltinWorkflows, loadBuiltinWorkflow } from './workflow-files.js';
import { libraryEntry, sameWorkflow, searchLibrary, suggestByTools, type LibraryEntry } from './library.js';

async function builtins(): Promise<LibraryEntry[]> {
  return Promise.all((await listBuiltinWorkflows()).map(async (n) => libraryEntry(await loadBuiltinWorkflow(n), { builtin: true })));
}

const toolOnly = (name: string, tools: string[], extra: Record<string, unknown> = {}) =>
  libraryEntry(
    compileWorkflow({ name, phases: tools.map((tool, i) => ({ name: `p${i}`, tool, parameters: {}, ...(i ? { depends_on: [`p${i - 1}`] } : {}) })), ...extra }),
    { builtin: false },
  );

describe('the built-in library', () => {
  it('has the four workflows, each with a category, tags and a description', async () => {
    const entries = await builtins();
    expect(entries.map((e) => e.name)).toEqual(['design-review', 'fetch-and-summarize', 'quick-fix', 'software-delivery']);
    for (const e of entries) {
      expect(e.category, e.name).toBeTruthy();
      expect(e.tags.length, e.name).toBeGreaterThan(0);
      expect(e.description.length, e.name).toBeGreaterThan(20);
    }
    const fetch = entries.find((e) => e.name === 'fetch-and-summarize');
    expect(fetch).toMatchObject({ agents: ['summarizer'], tools: ['http_request', 'write_file'] });
  });
});

describe('searchLibrary', () => {
  it('ranks name over tags over description, and every word must match', async () => {
    const entries = await builtins();
    const names = (q: Parameters<typeof searchLibrary>[1]) => searchLibrary(entries, q).map((h) => h.entry.name);
    // "review": in design-review's name (5) and tags (4) and description (1); a tag of quick-fix and
    // software-delivery, whose descriptions also say "review".
    expect(names({ text: 'review' })).toEqual(['design-review', 'quick-fix', 'software-delivery']);
    expect(names({ text: 'review parallel' })).toEqual(['design-review']);
    expect(names({ text: 'nothing-like-this' })).toEqual([]);
  });

  it('filters by category, tag, agent (either spelling) and tool', async () => {
    const entries = await builtins();
    const names = (q: Parameters<typeof searchLibrary>[1]) => searchLibrary(entries, q).map((h) => h.entry.name);
    expect(names({ category: 'software' })).toEqual(['quick-fix', 'software-delivery']);
    expect(names({ tag: 'review-loop' })).toEqual(['quick-fix', 'software-delivery']);
    expect(names({ agent: 'designer_agent' })).toEqual(['design-review', 'software-delivery']);
    expect(names({ tool: 'http_request' })).toEqual(['fetch-and-summarize']);
    expect(names({ category: 'software', text: 'bugfix' })).toEqual(['quick-fix']);
  });
});

describe('suggestByTools', () => {
  it('lists workflows using the tools, most of them first, then the closest fit, then by name', async () => {
    const entries = [
      ...(await builtins()),
      toolOnly('fetch-only', ['http_request']),
      toolOnly('fetch-render-write', ['http_request', 'render_template', 'write_file']),
      toolOnly('archive', ['write_file']),
      toolOnly('notify', ['slack_post']),
    ];
    const order = suggestByTools(entries, ['http_request', 'write_file']).map((s) => [s.entry.name, s.matched.length]);
    expect(order).toEqual([
      ['fetch-and-summarize', 2], // both tools, nothing else
      ['fetch-render-write', 2], // both tools and one more
      ['archive', 1],
      ['fetch-only', 1],
    ]);
    expect(() => suggestByTools(entries, [' '])).toThrow(/--tools/);
  });
});

describe('sameWorkflow', () => {
  it('compares meaning, not spelling: key order, role suffixes and defaults do not matter; the version does not', () => {
    const a = { name: 'x', version: '1', agents: ['planner_agent'], phases: [{ name: 'p', agent: 'planner_agent', timeout: 300 }] };
    const b = { phases: [{ agent: 'planner', name: 'p' }], agents: ['planner'], name: 'x', version: '7' };
    expect(sameWorkflow(a, b)).toBe(true);
    expect(sameWorkflow(a, { ...b, phases: [{ agent: 'planner', name: 'p', retries: 5 }] })).toBe(false);
  });
});
