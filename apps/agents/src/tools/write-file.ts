/**
 * `write_file`: write text into the run's artifacts directory (`FLEET_ARTIFACTS_DIR`, default
 * `runs/<run_id>`). The path is relative to it; absolute paths, `..` that leave it, and symbolic
 * links that point out of it are refused with `TOOL_NOT_ALLOWED`. A path the file system cannot hold
 * (a NUL byte, a name over {@link NAME_MAX_BYTES} bytes, a path over {@link PATH_MAX_BYTES} bytes) is
 * `TOOL_INPUT_INVALID`, not retried: another attempt would fail the same way.
 *
 * Output: `{path, bytes}` (`path` relative to the artifacts directory).
 */
import { FleetError } from '@agentfleet/core';
import { constants } from 'node:fs';
import { mkdir, open, realpath } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import type { FleetTool, ToolContext } from './tool.js';

/** Longest file or folder name, bytes (Linux `NAME_MAX`; most file systems agree). */
export const NAME_MAX_BYTES = 255;
/** Longest path, bytes, artifacts directory included (Linux `PATH_MAX`). */
export const PATH_MAX_BYTES = 4096;

/** What is wrong with `path` as a file path, or undefined when the file system can hold it. */
function pathProblem(path: string): string | undefined {
  if (path.includes('\0')) return 'must not contain a NUL byte (\\0): no file system accepts one in a name';
  for (const part of path.split(/[\\/]/)) {
    const bytes = Buffer.byteLength(part);
    if (bytes > NAME_MAX_BYTES) return `has a name of ${bytes} bytes ("${part.slice(0, 24)}…"); a file or folder name may have at most ${NAME_MAX_BYTES} bytes`;
  }
  return undefined;
}

const WriteFileParams = z.strictObject({
  /** Relative to the run's artifacts directory, e.g. `reports/summary.md`. */
  path: z
    .string()
    .min(1, 'path must not be empty')
    .superRefine((path, ctx) => {
      const problem = pathProblem(path);
      if (problem) ctx.addIssue({ code: 'custom', message: `path ${problem}` });
    }),
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
  if (Buffer.byteLength(target) > PATH_MAX_BYTES) {
    throw new FleetError('TOOL_INPUT_INVALID', `write_file: path "${p.path.slice(0, 48)}…" makes a path of ${Buffer.byteLength(target)} bytes under ${root}; a path may have at most ${PATH_MAX_BYTES} bytes: use a shorter one`);
  }
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
    if (err.code === 'ENAMETOOLONG') throw new FleetError('TOOL_INPUT_INVALID', `write_file: path "${p.path.slice(0, 48)}…" is too long for the file system: use a shorter one`, { cause: err });
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
