/**
 * One line for an error that is not a {@link FleetError}: what a person reads when a process cannot
 * start or go on (a busy port, a refused connection), with no stack trace unless asked for
 * (`FLEET_LOG_LEVEL=debug`).
 */

/** Node's system errors carry a code, and for sockets the address and port. */
interface SystemError extends Error {
  code?: string;
  syscall?: string;
  address?: string;
  port?: number;
  path?: string;
}

/** The line `fleet: …` prints for `err`. */
export function startupErrorLine(err: unknown, env: NodeJS.ProcessEnv = process.env): string {
  if (!(err instanceof Error)) return String(err);
  if (env.FLEET_LOG_LEVEL === 'debug' && err.stack) return err.stack;
  const e = err as SystemError;
  switch (e.code) {
    case 'EADDRINUSE':
      return `port ${e.port ?? ''} is already in use${e.address ? ` on ${e.address}` : ''} (--port / FLEET_HTTP_PORT, --metrics-port / FLEET_METRICS_PORT): stop the process that holds it or choose another port`;
    case 'EACCES':
      return e.syscall === 'listen' ? `no permission to listen on port ${e.port ?? ''}: choose a port above 1023` : `permission denied: ${e.path ?? e.message}`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${e.address ?? 'that address'}: it is not an address of this machine`;
    default:
      return e.message;
  }
}
