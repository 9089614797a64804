/**
 * `fleet test <workflow> --replies replies.yaml [--expect expect.yaml] [--replay cassette.jsonl]`: run a
 * workflow with scripted (or replayed) agents on a private Redis and check what it did, for a user's CI.
 *
 * Exit status: 0 when the run matched (or, without --expect, completed), 1 on a mismatch (the diff
 * is printed) or a run that did not complete, 2 for a bad workflow, fixture or expectation (path named).
 */
import { readFile } from 'node:fs/promises';
import { FleetError, resolveWorkflow, setDefaultLogLevel } from '@agentfleet/core';
import type { Command } from 'commander';
import { EXIT, resolveRoles, say } from '../shared.js';
import { ReplayLlmClient, readCassette } from '../testing/cassette.js';
import { compareRun, formatMismatches, parseExpectations } from '../testing/expect.js';
import { createTestFleet } from '../testing/test-fleet.js';

async function readText(file: string, flag: string): Promise<string> {
  return readFile(file, 'utf8').catch((err: Error) => {
    throw new FleetError('INVALID_INPUT', `${flag}: cannot read ${file}: ${err.message}`);
  });
}

export function register(program: Command): void {
  program
    .command('test')
    .description('run a workflow with scripted agents (replies.yaml) on a private Redis and check it against expect.yaml')
    .argument('<workflow>', 'built-in workflow name or a .yaml/.json file')
    .option('-r, --replies <file>', 'scripted replies: phase → output, list of outputs, or {error: CODE, times: n}')
    .option('-e, --expect <file>', 'expected status, order, phases (status, iterations, calls) and context')
    .option('--replay <cassette>', 'answer from a cassette recorded with fleet run --record; fail on the first request that differs')
    .option('--requirements <text>', 'the requirements the run gets (default: the cassette\'s, else "scripted test run")')
    .option('--json', 'print the run (result, calls per phase, differences) as JSON on stdout', false)
    .action(async (workflowRef: string, opts: { replies?: string; expect?: string; replay?: string; requirements?: string; json: boolean }) => {
      setDefaultLogLevel('silent');
      const workflow = await resolveWorkflow(workflowRef);
      const replies = opts.replies ? await readText(opts.replies, '--replies') : '{}';
      const expected = opts.expect ? parseExpectations(await readText(opts.expect, '--expect'), opts.expect) : undefined;
      const roles = await resolveRoles([...new Set(workflow.phases.flatMap((p) => (p.kind === 'agent' ? [p.agent] : [])))]);
      const cassette = opts.replay ? readCassette(opts.replay) : undefined;
      const replay = cassette ? new ReplayLlmClient(cassette) : undefined;
      await using fleet = await createTestFleet({ replies, repliesSource: opts.replies ?? 'replies', roles, fallback: replay });
      const run = await fleet.run(workflow, opts.requirements ?? cassette?.[0]?.requirements ?? 'scripted test run');
      if (replay?.mismatch) {
        const m = replay.mismatch;
        say(`fleet test: replay of ${opts.replay}: phase "${m.phase}" call ${m.call} sent a request that differs from the recorded one (- recorded, + now):\n${m.diff}`);
        process.exitCode = EXIT.failed;
        return;
      }
      const mismatches = expected ? compareRun(run, expected) : run.result.status === 'completed' ? [] : [{ path: 'status', expected: 'completed', actual: run.result.status }];
      if (opts.json) process.stdout.write(JSON.stringify({ result: run.result, calls: run.calls, mismatches }, null, 2) + '\n');
      const order = run.events.filter((e) => e.type === 'phase_completed').map((e) => e.phase);
      say(`fleet test: ${workflow.name}: run ${run.result.status}; phases completed in order ${order.join(' → ') || '(none)'}; model calls ${JSON.stringify(run.calls)}`);
      if (mismatches.length > 0) {
        say(formatMismatches(mismatches, opts.expect ?? 'the default expectation (status: completed)'));
        process.exitCode = EXIT.failed;
        return;
      }
      say(`fleet test: ok${opts.expect ? ` (matches ${opts.expect})` : ''}`);
    });
}
