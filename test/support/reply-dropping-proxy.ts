/**
 * A loopback TCP proxy in front of Redis (node:net) that can lose the reply to one command: once
 * armed with a marker, the first connection whose client sends a command containing it gets no more
 * bytes from Redis; when a withheld reply arrives and `landed()` says the command took effect, that
 * connection is cut. The client
 * (ioredis) reconnects through the proxy and resends what it had not been answered, as after a real
 * network fault between a command's execution and its reply.
 */
import { createServer, connect as connectTcp, type Server, type Socket } from 'node:net';

export interface ReplyDroppingProxy extends AsyncDisposable {
  /** `redis://127.0.0.1:<port>` of the proxy. */
  url: string;
  /**
   * Lose the reply to the next command whose bytes contain one of `markers`; resolves once the
   * connection that sent it was cut (after `landed()` turned true).
   */
  dropReplyTo(markers: readonly string[], landed: () => Promise<boolean>): Promise<void>;
  /** How many connections clients have opened through the proxy. */
  connections(): number;
  close(): Promise<void>;
}

/** Start a proxy to `target` (`redis://host:port`). */
export async function startReplyDroppingProxy(target: string): Promise<ReplyDroppingProxy> {
  const { hostname, port } = new URL(target);
  let armed: { markers: readonly string[]; landed: () => Promise<boolean>; done: () => void; fail: (err: unknown) => void } | undefined;
  let opened = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    opened++;
    const upstream = connectTcp(Number(port), hostname);
    sockets.add(client);
    sockets.add(upstream);
    let muted = false;
    /** While muted: the armed drop whose command went upstream, until its reply arrives there. */
    let withheld: NonNullable<typeof armed> | undefined;
    let checking = false;
    let recheck = false;
    const cut = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      const drop = armed;
      if (drop && !muted && drop.markers.some((m) => chunk.includes(m))) {
        armed = undefined;
        muted = true;
        withheld = drop;
        // Nothing more goes upstream on this connection: the replies that come back are to this
        // chunk's commands and those before it.
        upstream.write(chunk);
        return;
      }
      if (!muted) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!muted) {
        client.write(chunk);
        return;
      }
      // Redis replies to a command after running it, so each reply withheld here is a moment to ask
      // whether the marked command took effect; once it has, cut the connection.
      void check();
    });
    /** Ask `landed()`; a reply that arrives during the question asks again after it. */
    const check = async (): Promise<void> => {
      const drop = withheld;
      if (!drop) return;
      if (checking) {
        recheck = true;
        return;
      }
      checking = true;
      try {
        do {
          recheck = false;
          if (await drop.landed()) {
            withheld = undefined;
            cut();
            drop.done();
            return;
          }
        } while (recheck);
      } catch (err) {
        drop.fail(err);
      } finally {
        checking = false;
      }
    };
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    client.on('close', () => {
      upstream.destroy();
      sockets.delete(client);
    });
    upstream.on('close', () => {
      client.destroy();
      sockets.delete(upstream);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the proxy has no TCP address');
  const close = async (): Promise<void> => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    url: `redis://127.0.0.1:${address.port}`,
    dropReplyTo(markers, landed) {
      return new Promise<void>((done, fail) => {
        armed = { markers, landed, done, fail };
      });
    },
    connections: () => opened,
    close,
    [Symbol.asyncDispose]: close,
  };
}
