/**
 * A run's artifacts on disk, as `fleet run` writes them and `fleet resume --follow` / `fleet rerun
 * --follow` rewrite them: where they go, writing them, and remembering the directory beside the run
 * (its `artifacts_dir` label) so a later resume or rerun finds it.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { writeArtifacts } from '@agentfleet/agents';
import { RunLabelStore, type FleetClient, type RunResult, type WorkflowDefinition } from '@agentfleet/core';

/**
 * Write the artifacts of a finished run when its workflow asks for them (`output.save_to_file`) or
 * `out` is given, in the workflow's `output.format`, and record the directory on the run.
 *
 * @param out - the directory (`--out`); default `runs/<run_id>` under the working directory.
 * @returns the absolute directory written, or null when nothing was written.
 * @throws the file system's errors (a directory that cannot be created or written).
 */
export async function writeRunArtifacts(client: FleetClient, result: RunResult, output: WorkflowDefinition['output'], out: string | undefined): Promise<string | null> {
  if (!output.saveToFile && !out) return null;
  const dir = resolve(out ?? join('runs', result.run_id));
  await writeArtifacts(result, dir, { format: output.format });
  await new RunLabelStore(client.store.redis, client.prefix).setArtifactsDir(result.run_id, dir, client.store.runKey(result.run_id));
  return dir;
}

/**
 * Where a run's artifacts are on this machine: the directory `fleet run` recorded, else
 * `runs/<run_id>` when it exists under the working directory; undefined when there is none here.
 */
export async function artifactsDirOf(client: FleetClient, runId: string): Promise<string | undefined> {
  const recorded = (await new RunLabelStore(client.store.redis, client.prefix).get(runId)).artifacts_dir;
  if (recorded && existsSync(recorded)) return recorded;
  const local = resolve('runs', runId);
  return existsSync(local) ? local : undefined;
}

/**
 * The artifacts directory of a rerun of a run whose artifacts are in `originalDir`: beside it under
 * the new id when the original used the default layout (`…/<original id>`), else the same directory
 * (one chosen with `--out`, which holds the latest result).
 */
export function rerunArtifactsDir(originalDir: string, originalId: string, newId: string): string {
  return basename(originalDir) === originalId ? join(dirname(originalDir), newId) : originalDir;
}
