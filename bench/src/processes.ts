/**
 * Child processes of a benchmark: the AgentFleet manager and agent pools (the real `fleet` CLI) and
 * the bare BullMQ chain's workers (./bull-workers-main.ts), each in its own Node.js process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** The `fleet` CLI entry point. */
export const FLEET_BIN = fileURLToPath(new URL('../../apps/cli/bin/fleet.js', import.meta.url));
/** The bare BullMQ workers' entry point (compiled). */
export const BULL_WORKERS_BIN = fileURLToPath(new URL('./bull-workers-main.js', import.meta.url));

/** Extra Node.js flags for every child (e.g. `--cpu-prof --cpu-prof-dir=…` from `--cpu-prof`). */
export const childNodeFlags: string[] = [];

export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  /** Resident set size now, bytes (from /proc; 0 when unavailable). */
  rss(): Promise<number>;
  /** CPU time used so far, user + system, ms (from /proc, 10 ms resolution; 0 when unavailable). */
  cpuMs(): Promise<number>;
  /** SIGTERM, then SIGKILL after `killAfterMs`; resolves when the process is gone. */
  stop(killAfterMs?: number): Promise<void>;
}

/**
 * Start `node <script> <args>` and wait until its output contains `readyText`.
 *
 * @throws Error with the child's output when it exits or stays silent for `timeoutMs`.
 */
export async function startChild(name: string, script: string, args: string[], env: NodeJS.ProcessEnv, readyText: string, timeoutMs = 20_000): Promise<Child> {
  const child = spawn(process.execPath, [...childNodeFlags, script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const onData = (d: Buffer) => {
    output += d.toString();
    if (output.length > 64_000) output = output.slice(-32_000);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + timeoutMs;
  while (!output.includes(readyText)) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} was not ready within ${timeoutMs} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    name,
    process: child,
    rss: () => rssOf(child.pid),
    cpuMs: () => cpuMsOf(child.pid),
    async stop(killAfterMs = 10_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Resident set size of a process, bytes, from `/proc/<pid>/status` (Linux); 0 elsewhere. */
export async function rssOf(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`: 100 on every Linux build in use). */
const CLOCK_TICKS_PER_S = 100;

/**
 * CPU time a process has used, user + system, ms, from fields 14 and 15 of `/proc/<pid>/stat`
 * (proc(5); counted in clock ticks); 0 elsewhere.
 */
export async function cpuMsOf(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (the command) is in parentheses and may hold spaces: count fields after its closing one.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state), so field 14 (utime) is fields[11] and 15 (stime) fields[12].
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S;
  } catch {
    return 0;
  }
}

/** Stop every child, in parallel, ignoring ones already gone. */
export async function stopAll(children: readonly Child[]): Promise<void> {
  await Promise.all(children.map((c) => c.stop()));
}
