/**
 * The workflow library: every workflow a user can run (built-ins and registered templates), searched
 * by free text, category, tag, agent role or tool; suggested by the tools a user wants to use; and
 * moved between fleets as files (export, then import with validation).
 *
 * Searching and ranking are pure functions over {@link LibraryEntry} rows, so they are tested without
 * Redis; {@link loadLibrary}, {@link exportTemplate} and {@link importTemplates} read and write the
 * {@link TemplateRegistry} (the registry the HTTP API serves).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { FleetError, toFleetError } from '../errors.js';
import { compileWorkflow, normalizeRoleName } from '../workflow/compile.js';
import type { WorkflowDefinition } from '../workflow/definition.js';
import { parseWorkflowText } from '../workflow/parse.js';
import { BUILTIN_WORKFLOWS_DIR, listBuiltinWorkflows, loadBuiltinWorkflow } from './workflow-files.js';
import type { TemplateRegistry } from './template-registry.js';

/** One workflow of the library, with what search looks at. */
export interface LibraryEntry {
  name: string;
  version: string;
  builtin: boolean;
  /** false for a deactivated template (listed, never suggested). */
  active: boolean;
  description: string;
  category: string | null;
  tags: string[];
  /** Agent roles its phases use (fixed or selectable), sorted. */
  agents: string[];
  /** Tools its tool phases run, sorted. */
  tools: string[];
  definition: WorkflowDefinition;
}

/** A {@link LibraryEntry} for a compiled definition. */
export function libraryEntry(definition: WorkflowDefinition, o: { builtin: boolean; active?: boolean }): LibraryEntry {
  const agents = new Set<string>();
  const tools = new Set<string>();
  for (const p of definition.phases) {
    if (p.kind === 'tool' && p.tool) tools.add(p.tool);
    if (p.kind !== 'agent') continue;
    agents.add(p.agent);
    if (p.agentSelect?.type === 'load_balanced') p.agentSelect.agents.forEach((a) => agents.add(a));
    if (p.agentSelect?.type === 'based_on_input') {
      p.agentSelect.rules.forEach((r) => agents.add(r.agent));
      agents.add(p.agentSelect.default);
    }
  }
  return {
    name: definition.name,
    version: definition.version,
    builtin: o.builtin,
    active: o.active ?? true,
    description: definition.description,
    category: definition.category ?? null,
    tags: definition.tags ?? [],
    agents: [...agents].sort(),
    tools: [...tools].sort(),
    definition,
  };
}

/** What `fleet workflows search` filters on; every given field must match. */
export interface LibraryQuery {
  /** Free text: every word must appear in the name, description, category or tags (case-insensitive). */
  text?: string | undefined;
  /** Exact category (case-insensitive). */
  category?: string | undefined;
  /** A tag the workflow carries (case-insensitive). */
  tag?: string | undefined;
  /** An agent role a phase uses (`coder` or `coder_agent`). */
  agent?: string | undefined;
  /** A tool a phase runs. */
  tool?: string | undefined;
}

/** A search hit: the entry and its relevance (higher first). */
export interface LibraryHit {
  entry: LibraryEntry;
  score: number;
}

/**
 * Relevance of one word for one entry: name (exact 10, contained 5), tag (exact 4, contained 2),
 * category 2, description 1; 0 when the word appears nowhere.
 */
function wordScore(e: LibraryEntry, word: string): number {
  const name = e.name.toLowerCase();
  let score = name === word ? 10 : name.includes(word) ? 5 : 0;
  const tags = e.tags.map((t) => t.toLowerCase());
  score += tags.includes(word) ? 4 : tags.some((t) => t.includes(word)) ? 2 : 0;
  if (e.category?.toLowerCase().includes(word)) score += 2;
  if (e.description.toLowerCase().includes(word)) score += 1;
  return score;
}

/**
 * Search the library. Filters (`category`, `tag`, `agent`, `tool`) must all hold; with `text`, every
 * word must match somewhere and hits are ranked by relevance (name over tags over category over
 * description), then by name. Without `text`, every entry that passes the filters is returned by name.
 */
export function searchLibrary(entries: readonly LibraryEntry[], query: LibraryQuery): LibraryHit[] {
  const lc = (s: string | undefined) => s?.trim().toLowerCase() || undefined;
  const category = lc(query.category);
  const tag = lc(query.tag);
  const agent = query.agent?.trim() ? normalizeRoleName(query.agent.trim()) : undefined;
  const tool = query.tool?.trim() || undefined;
  const words = (query.text ?? '').toLowerCase().split(/[\s,]+/).filter(Boolean);
  const hits: LibraryHit[] = [];
  for (const e of entries) {
    if (category && e.category?.toLowerCase() !== category) continue;
    if (tag && !e.tags.some((t) => t.toLowerCase() === tag)) continue;
    if (agent && !e.agents.includes(agent)) continue;
    if (tool && !e.tools.includes(tool)) continue;
    let score = 0;
    let all = true;
    for (const w of words) {
      const s = wordScore(e, w);
      if (s === 0) {
        all = false;
        break;
      }
      score += s;
    }
    if (all) hits.push({ entry: e, score });
  }
  return hits.sort((a, b) => b.score - a.score || a.entry.name.localeCompare(b.entry.name));
}

/** A workflow suggested for a set of tools. */
export interface ToolSuggestion {
  entry: LibraryEntry;
  /** The asked-for tools the workflow uses. */
  matched: string[];
  /** The asked-for tools it does not use. */
  missing: string[];
  /** matched / asked, in [0, 1]. */
  coverage: number;
}

/**
 * Workflows that use the given tools, best match first: most of the asked-for tools used (coverage),
 * then fewest other tools (the closest fit), then by name. Workflows using none of them, and
 * deactivated templates, are left out.
 */
export function suggestByTools(entries: readonly LibraryEntry[], tools: readonly string[]): ToolSuggestion[] {
  const asked = [...new Set(tools.map((t) => t.trim()).filter(Boolean))];
  if (asked.length === 0) throw new FleetError('INVALID_INPUT', '--tools: name at least one tool, e.g. --tools http_request,write_file');
  const out: Array<ToolSuggestion & { extra: number }> = [];
  for (const e of entries) {
    if (!e.active) continue;
    const matched = asked.filter((t) => e.tools.includes(t));
    if (matched.length === 0) continue;
    out.push({ entry: e, matched, missing: asked.filter((t) => !e.tools.includes(t)), coverage: matched.length / asked.length, extra: e.tools.length - matched.length });
  }
  out.sort((a, b) => b.coverage - a.coverage || a.extra - b.extra || a.entry.name.localeCompare(b.entry.name));
  return out.map(({ extra, ...s }) => {
    void extra;
    return s;
  });
}

/**
 * Every workflow a fleet knows: the built-ins, then the registered templates (current versions, by
 * name). Without a registry (Redis down), the built-ins alone.
 */
export async function loadLibrary(registry: TemplateRegistry | undefined): Promise<LibraryEntry[]> {
  const names = registry ? await registry.builtins() : await listBuiltinWorkflows();
  const entries: LibraryEntry[] = [];
  for (const name of names) entries.push(libraryEntry(await loadBuiltinWorkflow(name), { builtin: true }));
  if (!registry) return entries;
  for (const name of (await registry.redis.smembers(registry.namesKey)).sort()) {
    try {
      const t = await registry.get(name);
      entries.push(libraryEntry(t.definition, { builtin: false, active: t.is_active }));
    } catch {
      // Removed between SMEMBERS and HGET: not listed.
    }
  }
  return entries;
}

/** File formats of `fleet workflows export`. */
export type WorkflowFileFormat = 'yaml' | 'json';

/**
 * The body of a workflow in the file format (snake_case, seconds), as it was written: a registered
 * template's current version as posted, or a built-in's YAML file.
 *
 * @throws FleetError `WORKFLOW_NOT_FOUND` when there is no such workflow.
 */
export async function exportTemplate(registry: TemplateRegistry | undefined, name: string): Promise<Record<string, unknown>> {
  if (registry) {
    const t = await registry.get(name);
    if (t.template) return t.template;
  }
  await loadBuiltinWorkflow(name); // WORKFLOW_NOT_FOUND naming the built-ins
  for (const ext of ['.yaml', '.yml', '.json']) {
    const path = join(BUILTIN_WORKFLOWS_DIR, name + ext);
    const text = await readFile(path, 'utf8').catch(() => undefined);
    if (text !== undefined) return parseWorkflowText(text, path) as Record<string, unknown>;
  }
  throw new FleetError('WORKFLOW_NOT_FOUND', `built-in workflow "${name}" could not be read`);
}

/** A workflow body as file text: YAML (block style) or JSON (2-space indent), ending in a newline. */
export function serializeWorkflow(body: Record<string, unknown>, format: WorkflowFileFormat): string {
  return format === 'json' ? `${JSON.stringify(body, null, 2)}\n` : stringifyYaml(body, { lineWidth: 0 });
}

/** JSON with object keys sorted, so two values equal in meaning give the same text. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b))) : v,
  );
}

/** Whether two workflow bodies compile to the same definition (their `version` aside). */
export function sameWorkflow(a: unknown, b: unknown): boolean {
  const compiled = (raw: unknown) => canonical({ ...compileWorkflow({ ...(raw as Record<string, unknown>), version: '0' }) });
  return compiled(a) === compiled(b);
}

/** What importing one file did. */
export interface ImportOutcome {
  source: string;
  name: string;
  /** `created` (version 1), `updated` (a new version), `unchanged` (the same workflow is there), `failed`. */
  action: 'created' | 'updated' | 'unchanged' | 'failed';
  version?: string;
  error?: string;
}

/**
 * Import workflow bodies into the registry. Every body is validated first; when any is not valid,
 * nothing is written and every outcome says why. Then each is created, or, when a template of that
 * name exists: left alone if it means the same, given a new version with `update`, else failed with
 * a `CONFLICT` message. A built-in name imports only when it means the same as the built-in.
 */
export async function importTemplates(
  registry: TemplateRegistry,
  items: ReadonlyArray<{ source: string; raw: unknown }>,
  options: { update?: boolean } = {},
): Promise<ImportOutcome[]> {
  const nameOf = (raw: unknown) => (typeof raw === 'object' && raw !== null && typeof (raw as { name?: unknown }).name === 'string' ? (raw as { name: string }).name : '(no name)');
  const invalid = items.map((item) => {
    try {
      compileWorkflow(item.raw);
      return undefined;
    } catch (err) {
      return toFleetError(err).message;
    }
  });
  if (invalid.some((m) => m !== undefined)) {
    return items.map((item, i) => ({
      source: item.source,
      name: nameOf(item.raw),
      action: 'failed',
      error: invalid[i] ?? 'another file of this import is not valid',
    }));
  }
  const builtins = await registry.builtins();
  const outcomes: ImportOutcome[] = [];
  for (const item of items) {
    const name = nameOf(item.raw);
    try {
      if (builtins.includes(name) || (await registry.redis.exists(registry.templateKey(name))) === 1) {
        const current = await registry.get(name);
        const currentBody = current.template ?? (await exportTemplate(undefined, name));
        if (sameWorkflow(currentBody, item.raw)) {
          outcomes.push({ source: item.source, name, action: 'unchanged', version: current.version });
        } else if (current.builtin) {
          throw new FleetError('CONFLICT', `"${name}" is a built-in workflow and differs from this file; rename the workflow in the file`);
        } else if (!options.update) {
          throw new FleetError('CONFLICT', `a different template "${name}" is already registered; import with --update to add this as a new version`);
        } else {
          const t = await registry.update(name, item.raw);
          outcomes.push({ source: item.source, name, action: 'updated', version: t.version });
        }
      } else {
        const t = await registry.create(item.raw);
        outcomes.push({ source: item.source, name, action: 'created', version: t.version });
      }
    } catch (err) {
      outcomes.push({ source: item.source, name, action: 'failed', error: toFleetError(err).message });
    }
  }
  return outcomes;
}
