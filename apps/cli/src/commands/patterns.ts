/**
 * Workflows learned from run history:
 *
 *   fleet patterns [--min-frequency 3] [--min-success-rate 0.8] [--max-length 5] [--runs 1000] [--json]
 *       the step sequences (agent roles and tools) that recur across finished runs, numbered
 *   fleet patterns suggest <n> --name X [--out FILE] [--add] [same thresholds]
 *       pattern n as a validated workflow (YAML on stdout or in FILE); --add registers it
 *
 * History is the newest `--runs` finished runs: from the run archive in PostgreSQL when
 * FLEET_HISTORY_URL is set (so runs Redis let expire still count), together with the finished runs
 * Redis holds that are not archived yet; from Redis alone otherwise.
 */
import { writeFile } from 'node:fs/promises';
import {
  FleetError,
  TemplateRegistry,
  assertRedisReachable,
  createRedis,
  loadConfig,
  minePatterns,
  readRunHistory,
  serializeWorkflow,
  suggestWorkflow,
  type HistoryRun,
  type SequencePattern,
} from '@agentfleet/core';
import {
  RunStore,
} from '@agentfleet/core/internal';
import { openHistoryStore, type HistoryStore } from '@agentfleet/manager';
import { Option, type Command } from 'commander';
import { positiveInt, say } from '../shared.js';

interface ThresholdFlags {
  minFrequency: number;
  minSuccessRate: number;
  maxLength: number;
  runs: number;
}

function rate(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new FleetError('INVALID_INPUT', `--min-success-rate must be a number from 0 to 1, got "${value}"`);
  return n;
}

function thresholdOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--min-frequency <n>', 'runs a sequence must occur in').argParser(positiveInt('--min-frequency')).default(3))
    .addOption(new Option('--min-success-rate <r>', 'share of occurrences whose every step completed (0-1)').argParser(rate).default(0.8))
    .addOption(new Option('--max-length <n>', 'longest sequence, in steps').argParser(positiveInt('--max-length')).default(5))
    .addOption(new Option('--runs <n>', 'how many of the newest runs to read').argParser(positiveInt('--runs')).default(1000));
}

interface HistorySources {
  store: RunStore;
  archive: HistoryStore | undefined;
}

async function withStore<T>(fn: (sources: HistorySources) => Promise<T>): Promise<T> {
  const config = loadConfig();
  await assertRedisReachable(config.redisUrl);
  const redis = createRedis(config.redisUrl, { name: 'fleet-patterns' });
  let archive: HistoryStore | undefined;
  try {
    if (config.historyUrl) archive = await openHistoryStore({ url: config.historyUrl, schema: config.historySchema, poolSize: 1 });
    return await fn({ store: new RunStore(redis, config.queuePrefix), archive });
  } finally {
    await archive?.close();
    redis.disconnect();
  }
}

/** The newest `limit` finished runs, oldest first: the archive's and those only Redis holds, once each. */
export async function readHistory({ store, archive }: HistorySources, limit: number): Promise<HistoryRun[]> {
  const inRedis = await readRunHistory(store, { limit });
  if (!archive) return inRedis;
  const archived = await archive.runHistory(limit);
  const seen = new Set(archived.map((r) => r.runId));
  // Redis runs are the newest (the archive lags behind them), so they go last, in their own order.
  return [...archived, ...inRedis.filter((r) => !seen.has(r.runId))].slice(-limit);
}

async function mine(sources: HistorySources, o: ThresholdFlags): Promise<{ history: HistoryRun[]; patterns: SequencePattern[] }> {
  const history = await readHistory(sources, o.runs);
  return { history, patterns: minePatterns(history, { minFrequency: o.minFrequency, minSuccessRate: o.minSuccessRate, maxLength: o.maxLength }) };
}

/** `  1. agent:planner → tool:http_request   5 runs   100% ok   mean 1.2 s` */
export function patternLine(p: SequencePattern, n: number): string {
  return `${String(n).padStart(3)}. ${p.steps.join(' → ')}   ${p.frequency} runs   ${Math.round(p.successRate * 100)}% ok   mean ${(p.meanDurationMs / 1000).toFixed(1)} s`;
}

export function register(program: Command): void {
  const patterns = thresholdOptions(
    program
      .command('patterns')
      .description('recurring sequences of agent roles and tools in the run history, with frequency, success rate and mean duration')
      .option('--json', 'print JSON', false),
  ).action(async (opts: ThresholdFlags & { json: boolean }) => {
    await withStore(async (sources) => {
      const { history, patterns: found } = await mine(sources, opts);
      if (opts.json) {
        process.stdout.write(JSON.stringify(found.map((p, i) => ({ n: i + 1, steps: p.steps, frequency: p.frequency, success_rate: p.successRate, mean_duration_ms: p.meanDurationMs })), null, 2) + '\n');
      } else {
        found.forEach((p, i) => process.stdout.write(patternLine(p, i + 1) + '\n'));
      }
      say(`${found.length} pattern(s) in ${history.length} finished run(s); \`fleet patterns suggest <n> --name NAME\` turns one into a workflow`);
    });
  });

  thresholdOptions(
    patterns
      .command('suggest')
      .description('turn pattern <n> (as numbered by `fleet patterns` with the same thresholds) into a validated workflow')
      .argument('<n>', 'the pattern number', positiveInt('<n>'))
      .requiredOption('--name <name>', 'name of the new workflow')
      .option('--description <text>', 'its description (default: what it was learned from)')
      .option('-o, --out <file>', 'write the workflow to this file (.yaml or .json) instead of stdout')
      .option('--add', 'also register it in the template registry', false),
  ).action(async (n: number, opts: ThresholdFlags & { name: string; description?: string; out?: string; add: boolean }) => {
    await withStore(async (sources) => {
      const { store } = sources;
      const { history, patterns: found } = await mine(sources, opts);
      const pattern = found[n - 1];
      if (!pattern) throw new FleetError('INVALID_INPUT', `there is no pattern ${n}: ${found.length} pattern(s) match these thresholds; run \`fleet patterns\` to see them`);
      const { body, definition } = suggestWorkflow(pattern, history, { name: opts.name, ...(opts.description ? { description: opts.description } : {}) });
      const text = serializeWorkflow(body, opts.out?.endsWith('.json') ? 'json' : 'yaml');
      if (opts.out) {
        await writeFile(opts.out, text, 'utf8');
        say(`${opts.out}: workflow ${definition.name} (${definition.phases.length} ${definition.phases.length === 1 ? 'phase' : 'phases'}), valid`);
      } else {
        process.stdout.write(text);
      }
      if (opts.add) {
        const t = await new TemplateRegistry(store.redis, store.prefix).create(body);
        say(`registered template ${t.name} v${t.version} (\`fleet workflows show ${t.name}\`)`);
      }
    });
  });
}
