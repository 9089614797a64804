/**
 * `write_file`: write text into the run's artifacts directory (`FLEET_ARTIFACTS_DIR`, default
 * `runs/<run_id>`). The path is relative to it; absolute paths, `..` that leave it, and symbolic
 * links that point out of it are refused with `TOOL_NOT_ALLOWED`.
 *
 * Output: `{path, bytes}` (`path` relative to the artifacts directory).
 */
import { FleetError } from '@agentfleet/core';
import { appendFile, mkdir, realpath, writeFile } from 'node:fs/promises';
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
  await mkdir(dirname(target), { recursive: true });
  // A symbolic link inside the directory must not lead out of it.
  const realRoot = await realpath(root);
  const realParent = await realpath(dirname(target));
  if (realParent !== realRoot && !inside(realRoot, realParent)) throw refuse('goes through a link that leaves the artifacts directory');
  const finalPath = resolve(realParent, target.slice(dirname(target).length + 1));
  const existing = await realpath(finalPath).catch(() => undefined);
  if (existing !== undefined && !inside(realRoot, existing)) throw refuse('is a link that leaves the artifacts directory');
  const text = typeof p.content === 'string' ? p.content : `${JSON.stringify(p.content ?? null, null, 2)}\n`;
  if (ctx.signal.aborted) throw ctx.signal.reason;
  if (p.mode === 'append') await appendFile(finalPath, text, 'utf8');
  else await writeFile(finalPath, text, 'utf8');
  return { path: relative(realRoot, finalPath).split(sep).join('/'), bytes: Buffer.byteLength(text) };
}

export const writeFileTool: FleetTool<WriteFileParams> = {
  name: 'write_file',
  description: "Write text (or JSON) to a file inside the run's artifacts directory.",
  parameters: WriteFileParams,
  handler: writeArtifact,
};
