/**
 * The workflow library from the command line (built-ins and the registry the HTTP API serves):
 *
 *   fleet workflows search [words…] [--category C] [--tag T] [--agent A] [--tool T] [--json]
 *   fleet workflows suggest --tools a,b [--json]          workflows using those tools, best first
 *   fleet workflows export [names…] [--out DIR] [--format yaml|json]
 *   fleet workflows import <files…> [--update]           validate every file, then register them
 *
 * `search`, `suggest` and `export` fall back to the built-in workflows when Redis does not answer;
 * `import` needs Redis.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  FleetError,
  exportTemplate,
  importTemplates,
  loadLibrary,
  parseWorkflowText,
  searchLibrary,
  serializeWorkflow,
  suggestByTools,
  type LibraryEntry,
  type TemplateRegistry,
  type WorkflowFileFormat,
} from '@agentfleet/core';
import { Option, type Command } from 'commander';
import { EXIT, say } from '../shared.js';

/** One line per workflow: name, version, origin, category, tags, what it uses, description. */
export function libraryLine(e: LibraryEntry, extra = ''): string {
  const uses = [...e.agents, ...e.tools.map((t) => `tool:${t}`)].join(',');
  return `${e.name.padEnd(24)} v${e.version.padEnd(7)} ${(e.builtin ? 'built-in' : e.active ? 'template' : 'inactive').padEnd(9)} ${(e.category ?? '-').padEnd(12)} [${e.tags.join(',')}] ${uses}${extra}  ${e.description}`;
}

function summary(e: LibraryEntry) {
  return { name: e.name, version: e.version, builtin: e.builtin, active: e.active, category: e.category, tags: e.tags, agents: e.agents, tools: e.tools, description: e.description };
}

/** Runs `fn` with the fleet's registry (undefined when Redis is down and `required` is false). */
export type WithRegistry = <T>(fn: (registry: TemplateRegistry | undefined) => Promise<T>, required?: boolean) => Promise<T>;

/** Register `search`, `suggest`, `export` and `import` under `fleet workflows`. */
export function register(workflows: Command, withRegistry: WithRegistry): void {
  workflows
    .command('search')
    .description('search the workflow library by words (name, description, tags), category, tag, agent or tool')
    .argument('[words...]', 'every word must match the name, description, category or a tag')
    .option('--category <category>', 'only this category')
    .option('--tag <tag>', 'only workflows with this tag')
    .option('--agent <role>', 'only workflows with a phase run by this agent role')
    .option('--tool <tool>', 'only workflows with a phase running this tool')
    .option('--json', 'print JSON', false)
    .action(async (words: string[], opts: { category?: string; tag?: string; agent?: string; tool?: string; json: boolean }) => {
      const entries = await withRegistry((registry) => loadLibrary(registry));
      const hits = searchLibrary(entries, { text: words.join(' '), category: opts.category, tag: opts.tag, agent: opts.agent, tool: opts.tool });
      if (opts.json) process.stdout.write(JSON.stringify(hits.map((h) => ({ ...summary(h.entry), score: h.score })), null, 2) + '\n');
      else for (const h of hits) process.stdout.write(libraryLine(h.entry) + '\n');
      if (hits.length === 0) say('no workflow matches; `fleet workflows list` shows them all');
    });

  workflows
    .command('suggest')
    .description('workflows that use the given tools, best match first')
    .requiredOption('--tools <list>', 'comma-separated tool names, e.g. http_request,write_file')
    .option('--json', 'print JSON', false)
    .action(async (opts: { tools: string; json: boolean }) => {
      const entries = await withRegistry((registry) => loadLibrary(registry));
      const suggestions = suggestByTools(entries, opts.tools.split(','));
      if (opts.json) {
        process.stdout.write(JSON.stringify(suggestions.map((s) => ({ ...summary(s.entry), matched: s.matched, missing: s.missing, coverage: s.coverage })), null, 2) + '\n');
      } else {
        for (const s of suggestions) process.stdout.write(libraryLine(s.entry, `  (uses ${s.matched.length}/${s.matched.length + s.missing.length}: ${s.matched.join(', ')})`) + '\n');
      }
      if (suggestions.length === 0) say(`no workflow uses ${opts.tools}; \`fleet workflows search\` to browse`);
    });

  workflows
    .command('export')
    .description('write workflows as files (the file format, as registered); all of them when no name is given')
    .argument('[names...]', 'workflow names (default: every built-in and registered workflow)')
    .option('-o, --out <dir>', 'directory to write into', 'workflows-export')
    .addOption(new Option('--format <format>', 'file format').choices(['yaml', 'json']).default('yaml'))
    .action(async (names: string[], opts: { out: string; format: WorkflowFileFormat }) => {
      const dir = resolve(opts.out);
      await mkdir(dir, { recursive: true });
      await withRegistry(async (registry) => {
        const wanted = names.length > 0 ? names : (await loadLibrary(registry)).map((e) => e.name);
        for (const name of wanted) {
          const body = await exportTemplate(registry, name);
          const path = join(dir, `${name}.${opts.format}`);
          await writeFile(path, serializeWorkflow(body, opts.format), 'utf8');
          process.stdout.write(`${path}\n`);
        }
        say(`exported ${wanted.length} workflow(s) to ${dir}`);
      });
    });

  workflows
    .command('import')
    .description('validate workflow files and register them (nothing is written when any file is not valid)')
    .argument('<files...>', '.yaml/.yml/.json workflow files')
    .option('--update', 'add a new version when a different template of that name exists', false)
    .action(async (files: string[], opts: { update: boolean }) => {
      const items: Array<{ source: string; raw: unknown }> = [];
      for (const file of files) {
        const text = await readFile(file, 'utf8').catch((err: Error) => {
          throw new FleetError('INVALID_INPUT', `cannot read ${file}: ${err.message}`);
        });
        items.push({ source: file, raw: parseWorkflowText(text, file) });
      }
      const outcomes = await withRegistry(async (registry) => (registry ? importTemplates(registry, items, { update: opts.update }) : []), true);
      for (const o of outcomes) {
        if (o.action === 'failed') say(`${o.source}: ${o.name}: not imported: ${o.error ?? ''}`);
        else process.stdout.write(`${o.action.padEnd(9)} ${o.name} v${o.version ?? '?'}  (${o.source})\n`);
      }
      if (outcomes.some((o) => o.action === 'failed')) process.exitCode = EXIT.usage;
    });
}
