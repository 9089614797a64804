/**
 * The path rules of the tools that read the run's artifacts directory (`read_file`, `list_files`),
 * the same as `write_file`'s: a path is relative to the directory; absolute paths, `..` that leave
 * it and symbolic links that lead out of it are refused with `TOOL_NOT_ALLOWED`.
 */
import { FleetError } from '@agentfleet/core';
import { realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';

/** Whether `path` lies strictly inside `root` (both absolute). */
export function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

/**
 * The real path of `path` inside the artifacts directory `artifactsDir`, checked.
 *
 * @param tool - the tool asking, for the error message.
 * @param allowRoot - `path` may name the directory itself (`""` or `.`), as `list_files` does.
 * @returns the absolute real path and the directory's real path; `undefined` as `real` when the path does not exist.
 * @throws FleetError `TOOL_NOT_ALLOWED` when the path is absolute, leaves the directory, or goes through a link that leaves it.
 */
export async function artifactPath(artifactsDir: string, path: string, tool: string, allowRoot = false): Promise<{ root: string; real: string | undefined }> {
  const root = resolve(artifactsDir);
  const refuse = (why: string) =>
    new FleetError('TOOL_NOT_ALLOWED', `${tool}: path "${path}" ${why}; ${tool} reads only inside the run's artifacts directory (FLEET_ARTIFACTS_DIR): use a relative path such as "files/src/server.js"`);
  if (isAbsolute(path) || /^[A-Za-z]:/.test(path)) throw refuse('is absolute');
  const target = resolve(root, path);
  if (!(allowRoot && target === root) && !isInside(root, target)) throw refuse('leaves the artifacts directory');
  const realRoot = await realpath(root).catch(() => undefined);
  if (realRoot === undefined) return { root, real: undefined };
  const real = await realpath(target).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw err;
  });
  if (real !== undefined && real !== realRoot && !isInside(realRoot, real)) throw refuse('goes through a link that leaves the artifacts directory');
  return { root: realRoot, real };
}
