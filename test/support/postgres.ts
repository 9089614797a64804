/**
 * PostgreSQL helpers for tests: the machine's server at 127.0.0.1:5432 (database `test`), one schema
 * per test file, dropped afterwards. Tests fail loudly, naming what to start, when it does not answer.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, Socket, type Server } from 'node:net';
import pg from 'pg';

/** URL of the test database (`FLEET_TEST_HISTORY_URL`, default the local server's `test` database). */
export function pgUrl(): string {
  return process.env.FLEET_TEST_HISTORY_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
}

/**
 * A schema name unique to one test file, created now; drop it with {@link dropSchema}.
 * @throws Error naming the command that starts PostgreSQL when it does not answer.
 */
export async function createTestSchema(name: string): Promise<string> {
  const schema = `test_${name.replace(/[^a-z0-9_]+/g, '_')}_${randomBytes(4).toString('hex')}`;
  const client = new pg.Client({ connectionString: pgUrl() });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(
      [
        `Tests of the run archive need PostgreSQL at ${pgUrl()}, which does not answer (${(err as Error).message}).`,
        'Start it, then run the tests again:',
        '  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
        'or `bash .ci/run` (starts it), or set FLEET_TEST_HISTORY_URL to a running PostgreSQL with a `test` database.',
      ].join('\n'),
      { cause: err },
    );
  }
  try {
    await client.query(`CREATE SCHEMA ${schema}`);
  } finally {
    await client.end();
  }
  return schema;
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: pgUrl() });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

/** A plain client on the test database with `search_path` set to `schema`. */
export async function schemaClient(schema: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: pgUrl(), options: `-c search_path=${schema}` });
  await client.connect();
  return client;
}

/**
 * A TCP proxy in front of the test PostgreSQL that can be stopped (every connection cut, the port
 * refusing) and started again on the same port: an honest PostgreSQL outage for one client.
 */
export interface TcpProxy extends AsyncDisposable {
  /** `postgres://…` through the proxy. */
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startPgProxy(): Promise<TcpProxy> {
  const target = new URL(pgUrl());
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = async () => {
    server = createServer((inbound) => {
      const outbound = new Socket();
      sockets.add(inbound).add(outbound);
      const drop = () => {
        inbound.destroy();
        outbound.destroy();
        sockets.delete(inbound);
        sockets.delete(outbound);
      };
      inbound.on('error', drop).on('close', drop);
      outbound.on('error', drop).on('close', drop);
      outbound.connect(Number(target.port || 5432), target.hostname, () => {
        inbound.pipe(outbound);
        outbound.pipe(inbound);
      });
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as { port: number }).port;
  };
  await listen();
  const url = new URL(pgUrl());
  url.host = `127.0.0.1:${port}`;
  const stop = async () => {
    if (!server) return;
    const s = server;
    server = undefined;
    for (const sock of sockets) sock.destroy();
    sockets.clear();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  return { url: url.toString(), stop, start: listen, [Symbol.asyncDispose]: stop };
}
