/**
 * `read_file`: read a text file of the run's artifacts directory (`FLEET_ARTIFACTS_DIR`, default
 * `runs/<run_id>`), with the path rules of `write_file` (./artifact-path.ts).
 *
 * Output: `{path, bytes, content, truncated}`: at most `max_bytes` bytes of the file (UTF-8) from
 * `offset`; `truncated` says more follows.
 */
import { FleetError } from '@agentfleet/core';
import { open } from 'node:fs/promises';
import { relative, sep } from 'node:path';
import { z } from 'zod';
import { artifactPath } from './artifact-path.js';
import type { FleetTool, ToolContext } from './tool.js';

const ReadFileParams = z.strictObject({
  /** Relative to the run's artifacts directory, e.g. `files/src/server.js`. */
  path: z.string().min(1, 'path must not be empty'),
  /** First byte to read. */
  offset: z.number().int().min(0).default(0),
  /** Most bytes returned. */
  max_bytes: z.number().int().positive().max(1024 * 1024).default(256 * 1024),
});
export type ReadFileParams = z.infer<typeof ReadFileParams>;

async function readArtifact(p: ReadFileParams, ctx: ToolContext): Promise<unknown> {
  const { root, real } = await artifactPath(ctx.artifactsDir, p.path, 'read_file');
  if (real === undefined) throw new FleetError('TOOL_INPUT_INVALID', `read_file: no file "${p.path}" in the run's artifacts directory; list them with list_files`);
  if (ctx.signal.aborted) throw ctx.signal.reason;
  const handle = await open(real, 'r');
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new FleetError('TOOL_INPUT_INVALID', `read_file: "${p.path}" is not a file; list a folder with list_files`);
    const length = Math.max(0, Math.min(p.max_bytes, stat.size - p.offset));
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, p.offset);
    return {
      path: relative(root, real).split(sep).join('/'),
      bytes: stat.size,
      content: buffer.subarray(0, bytesRead).toString('utf8'),
      truncated: p.offset + bytesRead < stat.size,
    };
  } finally {
    await handle.close();
  }
}

export const readFileTool: FleetTool<ReadFileParams> = {
  name: 'read_file',
  description: "Read a text file of the run's artifacts directory (path relative to it, e.g. files/src/server.js).",
  parameters: ReadFileParams,
  handler: readArtifact,
};
