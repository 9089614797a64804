/**
 * Schedules from the command line, kept in Redis under the fleet prefix (the same ones the HTTP API
 * and the console serve); a running manager fires them:
 *
 *   fleet schedules add <name> --workflow W (--cron "0 2 * * *" [--tz Europe/Berlin] | --every 15m)
 *                           (--requirements TEXT | --requirements-file F) [--var k=v …]
 *                           [--overlap skip|allow|cancel_previous] [--catch-up none|latest] [--misfire-grace 60s]
 *   fleet schedules list                  every schedule, its status and next fire
 *   fleet schedules show <name>           settings, fire counts and the newest runs (JSON)
 *   fleet schedules pause|resume <name>
 *   fleet schedules remove <name>
 *   fleet schedules trigger <name>        fire now (the overlap policy applies)
 */
import { readFile } from 'node:fs/promises';
import { CATCH_UP_POLICIES, FleetError, OVERLAP_POLICIES, ScheduleRunner, type FleetClient, type FleetConfig, type ScheduleView } from '@agentfleet/core';
import { Option, type Command } from 'commander';
import { parseVars, say, withClient } from '../shared.js';

/** Run `fn` with a schedule runner on the configured fleet. */
function withSchedules<T>(fn: (runner: ScheduleRunner, client: FleetClient, config: FleetConfig) => Promise<T>): Promise<T> {
  return withClient(async (client, config) => {
    const runner = new ScheduleRunner(client.redis, config.queuePrefix, client);
    try {
      return await fn(runner, client, config);
    } finally {
      await runner.close();
    }
  });
}

/** One line of `fleet schedules list`. */
export function scheduleLine(s: ScheduleView): string {
  const when = s.cron !== null ? `cron "${s.cron}" ${s.tz}` : `every ${s.every ?? '?'}`;
  const next = s.status === 'active' ? `next ${s.next_fire_at ?? '-'}` : 'paused';
  const last = s.last_fire_at ? `  last ${s.last_fire_at} ${s.last_outcome ?? ''}` : '';
  return `${s.name.padEnd(24)} ${s.workflow.padEnd(20)} ${when.padEnd(32)} ${next}${last}${s.last_error ? `  error: ${s.last_error}` : ''}`;
}

export function register(program: Command): void {
  const schedules = program.command('schedules').description('runs that start themselves: add, list, show, pause, resume, remove and trigger schedules');

  schedules
    .command('add')
    .description('add a schedule (a running manager fires it)')
    .argument('<name>', 'the schedule name (letters, digits, "_" and "-")')
    .requiredOption('--workflow <name>', 'a registered template or built-in workflow, resolved at each fire')
    .option('--cron <expression>', 'cron: 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, e.g. "0 2 * * *"')
    .option('--every <interval>', 'a fixed interval instead of --cron, e.g. 15m, 6h (at least 1s)')
    .option('--tz <zone>', 'IANA time zone the cron is read in', 'UTC')
    .option('--requirements <text>', 'the requirements of every run')
    .option('--requirements-file <file>', 'read the requirements from a file')
    .option('--var <key=value>', 'a workflow variable (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
    .addOption(new Option('--overlap <policy>', 'while the previous run is still going').choices([...OVERLAP_POLICIES]).default('skip'))
    .addOption(new Option('--catch-up <policy>', 'fires missed while no manager ran').choices([...CATCH_UP_POLICIES]).default('latest'))
    .option('--misfire-grace <duration>', 'a fire taken later than this after its time counts as missed', '60s')
    .action(
      async (
        name: string,
        opts: { workflow: string; cron?: string; every?: string; tz: string; requirements?: string; requirementsFile?: string; var: string[]; overlap: string; catchUp: string; misfireGrace: string },
      ) => {
        if (opts.requirements !== undefined && opts.requirementsFile !== undefined) throw new FleetError('INVALID_INPUT', 'give --requirements or --requirements-file, not both');
        const requirements =
          opts.requirementsFile !== undefined
            ? await readFile(opts.requirementsFile, 'utf8').catch((err: Error) => {
                throw new FleetError('INVALID_INPUT', `--requirements-file: cannot read ${opts.requirementsFile}: ${err.message}`);
              })
            : opts.requirements;
        if (requirements === undefined) throw new FleetError('INVALID_INPUT', 'say what each run should do: --requirements "..." or --requirements-file req.md');
        const input = {
          name,
          workflow: opts.workflow,
          ...(opts.cron !== undefined ? { cron: opts.cron } : {}),
          ...(opts.every !== undefined ? { every: opts.every } : {}),
          tz: opts.tz,
          requirements,
          variables: parseVars(opts.var),
          overlap: opts.overlap,
          catch_up: opts.catchUp,
          misfire_grace: opts.misfireGrace,
        };
        await withSchedules(async (runner, _client, config) => {
          const record = await runner.add(input, { createdBy: 'cli', provider: config.provider }).catch((err: unknown) => {
            throw asFlags(err);
          });
          const view = await runner.store.view(record);
          say(`schedule ${name} added: ${scheduleLine(view).trim()}`);
          say('a running manager (fleet manager, or fleet run) fires it');
        });
      },
    );

  schedules
    .command('list')
    .description('every schedule: workflow, when, next fire, last outcome')
    .option('--json', 'print the schedules as JSON', false)
    .action(async (opts: { json: boolean }) => {
      await withSchedules(async (runner) => {
        const views = await Promise.all((await runner.store.list()).map((r) => runner.store.view(r)));
        if (opts.json) process.stdout.write(JSON.stringify(views, null, 2) + '\n');
        else if (views.length === 0) say('no schedules yet; add one with: fleet schedules add <name> --workflow W --cron "0 2 * * *" --requirements "..."');
        else for (const v of views) process.stdout.write(scheduleLine(v) + '\n');
      });
    });

  schedules
    .command('show')
    .description("a schedule's settings, fire counts and newest runs (JSON)")
    .argument('<name>')
    .action(async (name: string) => {
      await withSchedules(async (runner, client) => {
        const view = await runner.store.view(await runner.store.get(name));
        const runs = await runner.store.runs(name, 20);
        const withStatus = await Promise.all(
          runs.map(async (r) => ({ run_id: r.run_id, fire_time: new Date(r.fire_time).toISOString(), status: await client.store.getResult(r.run_id).then((res) => res.status, () => null) })),
        );
        process.stdout.write(JSON.stringify({ ...view, runs: withStatus }, null, 2) + '\n');
      });
    });

  for (const [verb, what] of [
    ['pause', 'stop firing until resumed (the definition and its history stay)'],
    ['resume', 'fire again from the next fire time on'],
  ] as const) {
    schedules
      .command(verb)
      .description(what)
      .argument('<name>')
      .action(async (name: string) => {
        await withSchedules(async (runner) => {
          const record = verb === 'pause' ? await runner.store.pause(name) : await runner.store.resume(name);
          say(`schedule ${name} ${verb === 'pause' ? 'paused' : `resumed: ${scheduleLine(await runner.store.view(record)).trim()}`}`);
        });
      });
  }

  schedules
    .command('remove')
    .description('remove a schedule (the runs it started stay)')
    .argument('<name>')
    .action(async (name: string) => {
      await withSchedules(async (runner) => {
        await runner.store.remove(name);
        say(`schedule ${name} removed`);
      });
    });

  schedules
    .command('trigger')
    .description("fire a schedule now; prints the run id (the schedule's overlap policy applies)")
    .argument('<name>')
    .action(async (name: string) => {
      await withSchedules(async (runner) => {
        const outcome = await runner.fire({ schedule: name });
        if (outcome.action === 'start' && outcome.run_id) {
          process.stdout.write(outcome.run_id + '\n');
          say(`schedule ${name} fired: run ${outcome.run_id}; follow it with: fleet watch ${outcome.run_id} (HTTP API) or fleet status ${outcome.run_id}`);
        } else {
          say(`schedule ${name} fired, nothing started: ${outcome.action}${'previous_run_id' in outcome && outcome.previous_run_id ? ` (run ${outcome.previous_run_id} is still going; overlap is skip)` : ''}`);
        }
      });
    });
}

/** Validation issues named as the flags a user typed (`--cron`, `--catch-up`). */
function asFlags(err: unknown): unknown {
  if (!(err instanceof FleetError) || err.code !== 'INVALID_INPUT') return err;
  const issues = (err.details?.issues as Array<{ path: string; message: string }> | undefined) ?? [];
  if (issues.length === 0) return err;
  const flag = (path: string) => (path === 'name' ? '<name>' : path === 'variables' ? '--var' : `--${path.replace(/_/g, '-')}`);
  return new FleetError('INVALID_INPUT', issues.map((i) => `${flag(i.path)}: ${i.message}`).join('\n'), { details: { issues } });
}
