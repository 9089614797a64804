/**
 * Commands that steer a run already going or finished:
 *
 *   fleet event <run_id> <type> [--data JSON]   deliver an external event (approval, answers, …)
 *   fleet resume <run_id> [--follow]            continue a failed or cancelled run where it stopped
 *   fleet rerun <run_id> --from <phase> [--follow]   a new run reusing the outputs before <phase>
 *
 * With `--follow` the command draws the run's progress as `fleet run` does, rewrites its artifacts
 * when it has an artifacts directory here, prints the summary and exits 0 only when it completed.
 */
import { readFile } from 'node:fs/promises';
import { FleetError } from '@agentfleet/core';
import type { Command } from 'commander';
import { checkFollowOut, rerunAndFollow, resumeAndFollow, withFollower } from '../follow.js';
import { checkOutDir } from '../run.js';
import { say, withClient } from '../shared.js';

/** Parse `--data`: JSON text. @throws FleetError `INVALID_INPUT` naming the flag. */
export function parseData(text: string | undefined): unknown {
  if (text === undefined) return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new FleetError('INVALID_INPUT', `--data must be JSON, e.g. '{"approved": true}': ${(err as Error).message}`);
  }
}

export function register(program: Command): void {
  program
    .command('event')
    .description('deliver an external event to a waiting run: `approval` (data.approved false rejects), `approve`, `reject`, or what an agent asked for (`answers`)')
    .argument('<run_id>')
    .argument('<type>', 'event type')
    .option('-d, --data <json>', 'event data as JSON', undefined)
    .option('--id <key>', 'idempotency key: sending again with the same key applies the event once')
    .action(async (runId: string, type: string, opts: { data?: string; id?: string }) => {
      const data = parseData(opts.data);
      if (opts.id !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(opts.id)) throw new FleetError('INVALID_INPUT', '--id must be 1-64 letters, digits, "_" or "-"');
      await withClient((client) => client.sendEvent(runId, type, data, opts.id));
      say(`event "${type}" sent to run ${runId}`);
    });

  program
    .command('resume')
    .description('continue a failed or cancelled run from where it stopped (completed phases keep their outputs)')
    .argument('<run_id>')
    .option('--follow', 'follow the run to its end with the progress lines of fleet run, rewrite its artifacts, print its summary; exit 0 when it completed', false)
    .option('--json', 'with --follow: print the result JSON on stdout instead of the summary', false)
    .option('-o, --out <dir>', 'with --follow: write the artifacts here (default: where they were written)')
    .action(async (runId: string, opts: { follow: boolean; json: boolean; out?: string }) => {
      checkFollowOut(opts.follow, opts.out);
      await checkOutDir(opts.out);
      if (opts.follow) {
        process.exitCode = await withFollower((client, blocking) => resumeAndFollow(client, blocking, runId, opts));
        return;
      }
      await withClient((client) => client.resume(runId));
      say(`run ${runId} resumed; follow it with \`fleet watch ${runId}\``);
    });

  program
    .command('rerun')
    .description('start a new run of the same workflow version, reusing the outputs before --from and running it and what follows again')
    .argument('<run_id>')
    .requiredOption('--from <phase>', 'the first phase to run again')
    .option('--input-file <path>', 'edited requirements for the new run')
    .option('--follow', 'follow the new run to its end with the progress lines of fleet run, write its artifacts, print its summary; exit 0 when it completed', false)
    .option('--json', 'with --follow: print the result JSON on stdout instead of the summary', false)
    .option('-o, --out <dir>', "with --follow: write the artifacts here (default: beside the original run's)")
    .action(async (runId: string, opts: { from: string; inputFile?: string; follow: boolean; json: boolean; out?: string }) => {
      checkFollowOut(opts.follow, opts.out);
      await checkOutDir(opts.out);
      const requirements = opts.inputFile
        ? await readFile(opts.inputFile, 'utf8').catch((err: Error) => {
            throw new FleetError('INVALID_INPUT', `--input-file: cannot read ${opts.inputFile}: ${err.message}`);
          })
        : undefined;
      if (opts.follow) {
        process.exitCode = await withFollower((client, blocking) => rerunAndFollow(client, blocking, runId, { ...opts, requirements }));
        return;
      }
      const newId = await withClient((client) => client.rerun(runId, { from: opts.from, ...(requirements !== undefined ? { requirements } : {}) }));
      process.stdout.write(`${newId}\n`);
      say(`run ${newId} re-runs ${runId} from "${opts.from}"`);
    });
}
