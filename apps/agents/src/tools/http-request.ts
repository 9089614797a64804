/**
 * `http_request`: one HTTP call. Reaches loopback hosts (`localhost`, `127.0.0.0/8`, `::1`) and the
 * hosts of `FLEET_TOOL_ALLOWED_HOSTS`; anything else, including a redirect to such a host, is refused
 * with `TOOL_NOT_ALLOWED` naming the host and the setting. `data:` URLs are read without any network.
 *
 * Output: `{status, ok, url, headers, body, json?, truncated}`: `body` is the response text (at most
 * `max_bytes`), `json` the parsed body when the response is JSON.
 *
 * Errors: 429 and 5xx answers, connection failures and the tool's own `timeout` are `TOOL_FAILED`,
 * retryable (the phase's `retries` apply); other 4xx answers fail at once, unless
 * `allow_error_status` is true (then they are an ordinary output).
 */
import { FleetError } from '@agentfleet/core';
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import type { FleetTool, ToolContext } from './tool.js';

const HttpRequestParams = z.strictObject({
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']).default('GET'),
  url: z.string().min(1, 'url must not be empty'),
  headers: z.record(z.string(), z.string()).default({}),
  /** A string is sent as is; anything else as JSON (with `content-type: application/json`). */
  body: z.unknown().optional(),
  /** Seconds before the call is abandoned (within the phase's own timeout). */
  timeout: z.number().positive().max(3600).default(30),
  /** Largest response body kept, bytes; the rest is dropped and `truncated` is true. */
  max_bytes: z.number().int().positive().max(64 * 1024 * 1024).default(1024 * 1024),
  /** Return 4xx answers as output instead of failing the phase. */
  allow_error_status: z.boolean().default(false),
});
export type HttpRequestParams = z.infer<typeof HttpRequestParams>;

const MAX_REDIRECTS = 5;

/** Whether a URL's hostname is loopback: `localhost` (and `*.localhost`), 127.0.0.0/8, ::1. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1';
  return false;
}

/** Addresses of this machine or its networks: `0.0.0.0/8`, loopback, private, shared and link-local ranges. */
const INTERNAL = new BlockList();
for (const [net, bits] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.168.0.0', 16]] as const) {
  INTERNAL.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10]] as const) INTERNAL.addSubnet(net, bits, 'ipv6');

/**
 * Whether an IP address belongs to this machine or a private network: `0.0.0.0/8` (reaches this
 * machine), `127.0.0.0/8`, `::1`, `::`, private (`10/8`, `172.16/12`, `192.168/16`, `fc00::/7`),
 * shared (`100.64/10`) and link-local (`169.254/16`, `fe80::/10`) ranges, and any of them written as
 * an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`).
 */
export function isInternalAddress(address: string): boolean {
  const a = address.toLowerCase().replace(/^\[|\]$/g, '');
  const family = isIP(a);
  if (family === 4) return INTERNAL.check(a, 'ipv4');
  if (family !== 6) return false;
  const mapped = /^(?:0{0,4}:){0,5}(?:0{0,4}:)?ffff:(.+)$/.exec(a)?.[1];
  if (mapped !== undefined) {
    if (isIP(mapped) === 4) return INTERNAL.check(mapped, 'ipv4');
    const hex = /^([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(mapped);
    if (hex) {
      const n = (parseInt(hex[1] as string, 16) << 16) | parseInt(hex[2] as string, 16);
      return INTERNAL.check([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'), 'ipv4');
    }
  }
  return INTERNAL.check(a, 'ipv6');
}

/**
 * The first address of `hostname` (an IP literal, bracketed or not, or a name resolved through DNS)
 * that is on this machine or a private network, or undefined when every address is outside them.
 * A redirect from an outside host to a host this returns an address for is refused.
 */
export async function resolvesInternal(hostname: string): Promise<string | undefined> {
  const h = hostname.replace(/^\[|\]$/g, '');
  if (isIP(h)) return isInternalAddress(h) ? h : undefined;
  if (isLoopbackHost(h)) return h;
  const addresses = await lookup(h, { all: true, verbatim: true }).catch(() => []);
  return addresses.find((r) => isInternalAddress(r.address))?.address;
}

/** Whether `url` may be reached with these allowed-host patterns (see ./settings.ts). */
export function hostAllowed(url: URL, allowed: readonly string[]): boolean {
  if (url.protocol === 'data:') return true;
  if (isLoopbackHost(url.hostname)) return true;
  const host = url.hostname.toLowerCase();
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return allowed.some((pattern) => {
    if (pattern === '*') return true;
    const m = /^(.*?)(?::(\d+))?$/.exec(pattern);
    const [hostPart, portPart] = [m?.[1] ?? pattern, m?.[2]];
    if (portPart !== undefined && portPart !== port) return false;
    return hostPart.startsWith('*.') ? host.endsWith(hostPart.slice(1)) : host === hostPart;
  });
}

function refuse(url: URL, allowed: readonly string[], via?: string): FleetError {
  const host = url.port ? `${url.hostname}:${url.port}` : url.hostname;
  return new FleetError(
    'TOOL_NOT_ALLOWED',
    `http_request: host "${host}"${via ? ` (a redirect from ${via})` : ''} is not allowed; only loopback hosts${allowed.length ? ` and ${allowed.join(', ')}` : ''} are. Add it to FLEET_TOOL_ALLOWED_HOSTS (comma-separated) on the tools pool to allow it`,
    { details: { host, allowed_hosts: [...allowed] } },
  );
}

async function readBody(res: Response, maxBytes: number): Promise<{ text: string; truncated: boolean }> {
  if (!res.body) return { text: '', truncated: false };
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  for await (const value of res.body as unknown as AsyncIterable<Uint8Array>) {
    if (size + value.byteLength > maxBytes) {
      chunks.push(value.subarray(0, maxBytes - size));
      truncated = true;
      break; // leaving the loop cancels the rest of the body
    }
    chunks.push(value);
    size += value.byteLength;
  }
  return { text: Buffer.concat(chunks).toString('utf8'), truncated };
}

async function httpRequest(p: HttpRequestParams, ctx: ToolContext): Promise<unknown> {
  let url: URL;
  try {
    url = new URL(p.url);
  } catch {
    throw new FleetError('TOOL_INPUT_INVALID', `http_request: url "${p.url}" is not an absolute URL (http://…, https://… or data:…)`);
  }
  if (!['http:', 'https:', 'data:'].includes(url.protocol)) {
    throw new FleetError('TOOL_INPUT_INVALID', `http_request: url scheme "${url.protocol}" is not supported; use http, https or data`);
  }
  const allowed = ctx.settings.allowedHosts;
  if (!hostAllowed(url, allowed)) throw refuse(url, allowed);

  const headers: Record<string, string> = { ...p.headers };
  // Inside an agent's tool loop: a retried attempt repeats an unfinished call with the same key, so a
  // server that honours Idempotency-Key does its side effect once.
  if (ctx.idempotencyKey && !Object.keys(headers).some((h) => h.toLowerCase() === 'idempotency-key')) headers['Idempotency-Key'] = ctx.idempotencyKey;
  let body: string | undefined;
  if (p.body !== undefined && p.body !== null) {
    if (typeof p.body === 'string') body = p.body;
    else {
      body = JSON.stringify(p.body);
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    }
  }
  const own = AbortSignal.timeout(p.timeout * 1000);
  const signal = AbortSignal.any([ctx.signal, own]);
  let method: string = p.method;
  let res: Response;
  for (let hop = 0; ; hop++) {
    try {
      res = await fetch(url, { method, headers, ...(body !== undefined && method !== 'GET' && method !== 'HEAD' ? { body } : {}), redirect: 'manual', signal });
    } catch (err) {
      if (ctx.signal.aborted) throw err; // the phase timed out or was cancelled: the worker says which
      if (own.aborted) throw new FleetError('TOOL_FAILED', `http_request: ${method} ${url.href} did not answer within ${p.timeout} s`, { cause: err });
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new FleetError('TOOL_FAILED', `http_request: ${method} ${url.href} failed: ${cause?.code ?? cause?.message ?? (err as Error).message}`, { cause: err });
    }
    const location = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || res.status === 304 || !location) break;
    if (hop >= MAX_REDIRECTS) throw new FleetError('TOOL_FAILED', `http_request: more than ${MAX_REDIRECTS} redirects from ${p.url}`, { retryable: false });
    const next = new URL(location, url);
    if (!hostAllowed(next, allowed)) throw refuse(next, allowed, url.host);
    // A remote host must not steer the request into this machine or its networks (loopback and
    // private addresses are reached only when asked for directly): the next host is resolved and
    // every address it resolves to is checked, at every hop.
    if (next.protocol !== 'data:' && !(await resolvesInternal(url.hostname))) {
      const internal = await resolvesInternal(next.hostname);
      if (internal) throw refuse(next, [], `${url.host}, to internal address ${internal}`);
    }
    // Credentials go only to the origin they were given for (as fetch's own redirect handling does).
    if (next.origin !== url.origin) {
      for (const h of Object.keys(headers)) if (['authorization', 'cookie', 'proxy-authorization'].includes(h.toLowerCase())) delete headers[h];
    }
    await res.body?.cancel().catch(() => undefined);
    if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
      method = 'GET';
      body = undefined;
    }
    url = next;
  }
  const { text, truncated } = await readBody(res, p.max_bytes);
  if (res.status >= 400 && !p.allow_error_status) {
    const retryable = res.status === 429 || res.status >= 500;
    throw new FleetError('TOOL_FAILED', `http_request: ${method} ${url.href} answered ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`, {
      retryable,
      details: { status: res.status },
    });
  }
  const out: Record<string, unknown> = { status: res.status, ok: res.ok, url: url.href, headers: Object.fromEntries(res.headers), body: text, truncated };
  if (/\bjson\b/i.test(res.headers.get('content-type') ?? '') && !truncated) {
    try {
      out.json = JSON.parse(text) as unknown;
    } catch {
      // Not JSON after all: `body` has the text.
    }
  }
  return out;
}

export const httpRequestTool: FleetTool<HttpRequestParams> = {
  name: 'http_request',
  description: 'One HTTP request (loopback and FLEET_TOOL_ALLOWED_HOSTS only); the response status, headers and body.',
  parameters: HttpRequestParams,
  handler: httpRequest,
};
