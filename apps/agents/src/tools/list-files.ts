/**
 * `list_files`: list the files under a folder of the run's artifacts directory (`FLEET_ARTIFACTS_DIR`),
 * with the path rules of `write_file` (./artifact-path.ts). Symbolic links are listed as links and
 * never followed.
 *
 * Output: `{path, files: [{path, bytes}], truncated}`, paths relative to the artifacts directory,
 * sorted; at most `max_entries` of them.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { z } from 'zod';
import { artifactPath } from './artifact-path.js';
import type { FleetTool, ToolContext } from './tool.js';

const ListFilesParams = z.strictObject({
  /** Folder relative to the run's artifacts directory; the directory itself when empty. */
  path: z.string().default(''),
  max_entries: z.number().int().positive().max(10_000).default(1000),
});
export type ListFilesParams = z.infer<typeof ListFilesParams>;

async function listArtifacts(p: ListFilesParams, ctx: ToolContext): Promise<unknown> {
  const { root, real } = await artifactPath(ctx.artifactsDir, p.path || '.', 'list_files', true);
  if (real === undefined) return { path: p.path, files: [], truncated: false };
  const files: Array<{ path: string; bytes: number }> = [];
  let truncated = false;
  const entries = await readdir(real, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (!entry.isFile()) continue;
    const full = join(entry.parentPath, entry.name);
    if (files.length >= p.max_entries) {
      truncated = true;
      break;
    }
    const stat = await lstat(full);
    files.push({ path: relative(root, full).split(sep).join('/'), bytes: stat.size });
  }
  files.sort((a, b) => a.path.localeCompare(b.path));
  return { path: p.path, files, truncated };
}

export const listFilesTool: FleetTool<ListFilesParams> = {
  name: 'list_files',
  description: "List the files under a folder of the run's artifacts directory (all of it when path is empty), with their sizes in bytes.",
  parameters: ListFilesParams,
  handler: listArtifacts,
};
