/**
 * The browser console under `/ui/`: the static files `apps/console` builds (`npm run build`). They
 * hold no data and no key: the page signs in with an API key and reads only the public HTTP API
 * with it, so the files themselves are served without authentication (like `/docs`).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** Where `apps/console` puts its build, seen from this file's place in `apps/manager/dist/http/`. */
export const BUNDLED_CONSOLE_DIR = fileURLToPath(new URL('../../../console/dist/', import.meta.url));

/**
 * Serve the console's files under `/ui/` (and redirect `/ui` there). When the console was not built,
 * `/ui/` answers 503 with what to run instead of a bare 404.
 *
 * @param dir - the console build directory (holding `index.html`). @defaultValue {@link BUNDLED_CONSOLE_DIR}
 */
export async function registerConsole(app: FastifyInstance, dir: string = BUNDLED_CONSOLE_DIR): Promise<void> {
  const hide = { schema: { hide: true } };
  app.get('/ui', hide, (_request, reply) => reply.redirect('/ui/', 302));
  if (!existsSync(`${dir}/index.html`)) {
    app.get('/ui/*', hide, (_request, reply) =>
      reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send(`The console is not built: no index.html in ${dir}. Run \`npm run build\` (or \`npm ci\`) at the repository root.`),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root: dir,
    prefix: '/ui/',
    index: ['index.html'],
    cacheControl: false,
    // Hashed asset names never change; index.html must always be fetched again.
    setHeaders(reply, path) {
      void reply.header('cache-control', path.endsWith('index.html') ? 'no-cache' : 'public, max-age=31536000, immutable');
    },
  });
}
