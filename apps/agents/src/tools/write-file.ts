/**
 * `write_file`: write text into the run's artifacts directory (`FLEET_ARTIFACTS_DIR`, default
 * `runs/<run_id>`). The path is relative to it; absolute paths, `..` that leave it, and symbolic
 * links that point out of it are refused with `TOOL_NOT_ALLOWED`.
 *
 * Output: `{path, bytes}` (`path` relative to the artifacts directory).
 */
import { FleetError } from '@agentfleet/core';
import { constants } from 'node:fs';
import { mkdir, open, realpath } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import type { FleetTool, ToolContext } from './tool.js';

const WriteFileParams = z.strictObject({
  /** Relative to the run's artifacts directory, e.g. `reports/summary.md`. */
  path: z.string().min(1, 'path must not be empty'),
  /** Text to write; any other value is written as pretty JSON. */
  content: z.unknown(),
  mode: z.enum(['overwrite', 'append']).default('overwrite'),
});
export type WriteFileParams = z.infer<typeof WriteFileParams>;

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

async function writeArtifact(p: WriteFileParams, ctx: ToolContext): Promise<unknown> {
  const root = resolve(ctx.artifactsDir);
  const refuse = (why: string) =>
    new FleetError('TOOL_NOT_ALLOWED', `write_file: path "${p.path}" ${why}; write_file writes only inside the run's artifacts directory (FLEET_ARTIFACTS_DIR, here ${root}): use a relative path such as "summary.md"`);
  if (isAbsolute(p.path) || /^[A-Za-z]:/.test(p.path)) throw refuse('is absolute');
  const target = resolve(root, p.path);
  if (!inside(root, target)) throw refuse('leaves the artifacts directory');
  await mkdir(root, { recursive: true });
  const realRoot = await realpath(root);
  // A symbolic link inside the directory must not lead out of it: check the deepest folder that exists
  // before creating the rest, so no folder is ever made through a link.
  let existingDir = dirname(target);
  while (!(await realpath(existingDir).then(() => true, () => false))) existingDir = dirname(existingDir);
  const realExisting = await realpath(existingDir);
  if (realExisting !== realRoot && !inside(realRoot, realExisting)) throw refuse('goes through a link that leaves the artifacts directory');
  await mkdir(dirname(target), { recursive: true });
  const realParent = await realpath(dirname(target));
  if (realParent !== realRoot && !inside(realRoot, realParent)) throw refuse('goes through a link that leaves the artifacts directory');
  const finalPath = resolve(realParent, target.slice(dirname(target).length + 1));
  const text = typeof p.content === 'string' ? p.content : `${JSON.stringify(p.content ?? null, null, 2)}\n`;
  if (ctx.signal.aborted) throw ctx.signal.reason;
  // O_NOFOLLOW: the file itself may not be a link (not even a dangling one that would create its target elsewhere).
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | (p.mode === 'append' ? constants.O_APPEND : constants.O_TRUNC);
  const handle = await open(finalPath, flags, 0o644).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ELOOP') throw refuse('is a symbolic link');
    throw err;
  });
  try {
    await handle.writeFile(text, 'utf8');
  } finally {
    await handle.close();
  }
  return { path: relative(realRoot, finalPath).split(sep).join('/'), bytes: Buffer.byteLength(text) };
}

export const writeFileTool: FleetTool<WriteFileParams> = {
  name: 'write_file',
  description: "Write text (or JSON) to a file inside the run's artifacts directory.",
  parameters: WriteFileParams,
  handler: writeArtifact,
};
