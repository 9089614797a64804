/**
 * The template registry from the command line (the same registry the HTTP API serves, in Redis):
 *
 *   fleet workflows add <file> [--update]   register a template (or add a version with --update)
 *   fleet workflows list                    built-in workflows and registered templates
 *   fleet workflows show <name|file>        a template's compiled definition
 *   fleet workflows validate <file>         check a file, template fields included
 *
 * `show` falls back to the built-in workflows alone when Redis does not answer; `list` then prints
 * the built-ins, says the registered templates could not be read, and exits 2.
 */
import { readFile } from 'node:fs/promises';
import {
  FleetError,
  TemplateRegistry,
  createRedis,
  listBuiltinWorkflows,
  loadConfig,
  parseWorkflowText,
  pingRedis,
  redactRedisUrl,
  redisNotAnsweringMessage,
  resolveWorkflow,
  type WorkflowDefinition,
} from '@agentfleet/core';
import type { Command } from 'commander';
import { say } from '../shared.js';
import { register as registerLibrary } from './library.js';
import { libraryNotFound } from '../workflow-library.js';

/** Run `fn` with the registry of the configured fleet, or undefined (with a note) when Redis is down. */
async function withRegistry<T>(fn: (registry: TemplateRegistry | undefined) => Promise<T>, required = false): Promise<T> {
  const config = loadConfig();
  const ping = await pingRedis(config.redisUrl, 1500);
  if (!ping.ok) {
    if (required) throw new FleetError('REDIS_UNAVAILABLE', `the template registry lives in Redis, which does not answer (${ping.reason}); set REDIS_URL`);
    say(`note: Redis does not answer (${ping.reason}); showing built-in workflows only`);
    return fn(undefined);
  }
  const redis = createRedis(config.redisUrl, { name: 'fleet-cli' });
  try {
    return await fn(new TemplateRegistry(redis, config.queuePrefix));
  } finally {
    redis.disconnect();
  }
}

/**
 * Lines of `fleet workflows list`: built-ins, then registered templates (with version and status).
 *
 * @returns the lines, and `unread` (the reason) when Redis did not answer: the lines then hold the
 *   built-ins only, and the command exits 2 after printing them.
 */
export async function listWorkflowLines(): Promise<{ lines: string[]; unread?: string }> {
  const config = loadConfig();
  const ping = await pingRedis(config.redisUrl, 1500);
  if (!ping.ok) {
    const lines: string[] = [];
    for (const name of await listBuiltinWorkflows()) {
      const wf = await resolveWorkflow(name);
      lines.push(`${wf.name.padEnd(24)} v${wf.version.padEnd(8)} ${'built-in'.padEnd(10)} ${wf.description}`);
    }
    const why = 'silent' in ping && ping.silent === true ? redisNotAnsweringMessage(config.redisUrl, 1500) : `Redis at ${redactRedisUrl(config.redisUrl)} does not answer (${ping.reason})`;
    return { lines, unread: `the registered templates could not be read: ${why}; only the built-in workflows are listed` };
  }
  return withRegistry(async (registry) => {
    const { items } = await (registry as TemplateRegistry).list({ limit: 10_000 });
    return { lines: items.map((t) => `${t.name.padEnd(24)} v${t.version.padEnd(8)} ${(t.builtin ? 'built-in' : t.is_active ? 'template' : 'inactive').padEnd(10)} ${t.description}`) };
  }, true);
}

/** The compiled definition `fleet workflows show` prints: a file, a registered template, or a built-in. */
export async function showWorkflow(ref: string): Promise<WorkflowDefinition> {
  const looksLikePath = /\.(ya?ml|json)$/i.test(ref) || ref.includes('/') || ref.includes('\\');
  if (looksLikePath) return resolveWorkflow(ref);
  return withRegistry(async (registry) => {
    if (!registry) return resolveWorkflow(ref);
    try {
      return (await registry.get(ref)).definition;
    } catch (err) {
      throw await libraryNotFound(err, ref, registry);
    }
  });
}

export function register(program: Command): void {
  const workflows = program.commands.find((c) => c.name() === 'workflows') ?? program.command('workflows').description('list, show, validate and add workflows');
  workflows
    .command('add')
    .description('register a workflow template from a .yaml/.json file in the registry (Redis); --update adds a version')
    .argument('<file>')
    .option('--update', 'store a new version of an existing template', false)
    .action(async (file: string, opts: { update: boolean }) => {
      const text = await readFile(file, 'utf8').catch((err: Error) => {
        throw new FleetError('INVALID_INPUT', `cannot read ${file}: ${err.message}`);
      });
      const raw = parseWorkflowText(text, file) as Record<string, unknown>;
      await withRegistry(async (registry) => {
        if (!registry) return;
        const name = typeof raw.name === 'string' ? raw.name : '';
        const t = opts.update ? await registry.update(name, raw) : await registry.create(raw);
        say(`${file}: registered template ${t.name} v${t.version} (${t.phases} phases${t.category ? `, category ${t.category}` : ''})`);
        process.stdout.write(`${t.name} ${t.version}\n`);
      }, true);
    });
  registerLibrary(workflows, withRegistry);
}
