/**
 * The HTTP API's JSON body parser. Like Fastify's own, it refuses keys that could change the
 * prototype of objects built from the body (`__proto__`, and `constructor` holding `prototype`),
 * but it says so: `400 INVALID_INPUT` naming the key's path and the fix, where Fastify's parser
 * calls such a body "not valid JSON". A body that is not JSON gets the parser's reason.
 *
 * @see https://fastify.dev/docs/latest/Guides/Prototype-Poisoning/
 */
import { FleetError } from '@agentfleet/core';
import type { FastifyInstance } from 'fastify';

/** The path of the first forbidden key in `value` (`body.variables.__proto__`), or undefined. Iterative, so any depth is safe. */
export function forbiddenKeyPath(value: unknown): string | undefined {
  const todo: Array<{ node: unknown; path: string }> = [{ node: value, path: 'body' }];
  for (let item = todo.pop(); item; item = todo.pop()) {
    const { node, path } = item;
    if (typeof node !== 'object' || node === null) continue;
    if (Array.isArray(node)) {
      node.forEach((child, i) => todo.push({ node: child, path: `${path}[${i}]` }));
      continue;
    }
    for (const key of Object.keys(node)) {
      const child = (node as Record<string, unknown>)[key];
      if (key === '__proto__') return `${path}.__proto__`;
      if (key === 'constructor' && typeof child === 'object' && child !== null && Object.hasOwn(child, 'prototype')) return `${path}.constructor.prototype`;
      todo.push({ node: child, path: `${path}.${key}` });
    }
  }
  return undefined;
}

/**
 * Parse `text` as a JSON request body.
 *
 * @throws FleetError `INVALID_INPUT` (400) for text that is not JSON (with the parser's reason) and
 *   for a forbidden key (naming its path).
 */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') throw new FleetError('INVALID_INPUT', "the body is empty but content-type is application/json: send a JSON value, or no content-type");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new FleetError('INVALID_INPUT', `the body is not valid JSON: ${(err as Error).message}`);
  }
  const forbidden = forbiddenKeyPath(value);
  if (forbidden) {
    throw new FleetError(
      'INVALID_INPUT',
      `${forbidden}: a key named "${forbidden.endsWith('.prototype') ? 'constructor.prototype' : '__proto__'}" is not accepted (it could change the prototype of objects built from the body); rename the key`,
      { details: { issues: [{ path: forbidden, message: 'forbidden key: rename it' }] } },
    );
  }
  return value;
}

/** Replace Fastify's JSON parser with {@link parseJsonBody} (same body limit). */
export function registerJsonBodyParser(app: FastifyInstance): void {
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
}
