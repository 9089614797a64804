/**
 * `npm run bench:console [-- options]`: how fast the console's runs list and run page answer and
 * render with many runs in Redis. Starts a private `redis-server`, the real `fleet manager --port`
 * and `fleet agents` (offline model), runs a few real runs through them (a three-phase run of a user
 * key in a conversation, a cancelled approval run, and one run of a 50-phase DAG), copies the small
 * finished runs into `--runs` runs (./console-seed.ts), then measures with Node's fetch and with
 * Debian's Chromium driven by playwright-core:
 *
 * - API: `GET /api/runs` for the first page (25 rows, as the console asks), page two by cursor, and
 *   the filters by user, conversation, status and search text; wall time from request to parsed JSON, ms.
 * - first render of the runs list: from navigation start (a new tab loading `/ui/#/runs`) until the
 *   table holds the first page's rows, ms (`performance.now()` when a MutationObserver sees them).
 * - first render of the run page of the 50-phase run: until its graph shows every node with its status.
 *
 * Each figure is the median and p95 of `--samples` measurements after one warm-up (the browser's cache
 * holds the console's files, as for a returning user; the cold first load is reported apart). Writes
 * `bench/results/console-<date>.json` and prints a markdown table.
 *
 *   --runs N        runs in Redis (default 10000)
 *   --phases N      phases of the DAG run (default 50)
 *   --samples N     measurements per figure (default 20)
 *   --out DIR       results directory (default bench/results)
 *   --profile DIR   also write a CPU profile (.cpuprofile, for Chrome DevTools) of one more render of each page
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createRedis } from '@agentfleet/core';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { seedRunCopies } from './console-seed.js';
import { FLEET_BIN, startChild, stopAll, type Child } from './processes.js';
import { startPrivateRedis } from './redis-util.js';
import { median, quantile, round } from './stats.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10000' },
    phases: { type: 'string', default: '50' },
    samples: { type: 'string', default: '20' },
    out: { type: 'string' },
    profile: { type: 'string' },
  },
});
const RUNS = Number(values.runs);
const PHASES = Number(values.phases);
const SAMPLES = Math.max(1, Number(values.samples));
const OUT = resolve(values.out ?? fileURLToPath(new URL('../results', import.meta.url)));
const PROFILE_DIR = values.profile === undefined ? undefined : resolve(values.profile);
const PAGE_SIZE = 25;
const PREFIX = '{bench-console}';
const ADMIN_KEY = 'bench-admin-key-0123456789';
const USER_KEY = 'bench-user-key-0123456789';
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
/** Words the seeded requirements are made of; `SEARCH_WORD` is in one run of 100. */
const WORDS = ['invoice', 'export', 'login', 'search', 'billing', 'report', 'upload', 'profile', 'cache', 'webhook'];
const SEARCH_WORD = 'kanban';

interface Figure {
  name: string;
  unit: 'ms';
  median: number;
  p95: number;
  /** The first measurement (cold browser cache), when it was left out of median and p95. */
  cold?: number;
  samples: number;
}

/**
 * A page script (run before the console's own) that records in `window.__rendered` the
 * `performance.now()` at which `count` elements matching `selector` are first shown: in the DOM and
 * not hidden (React Flow keeps nodes hidden until it has measured them).
 */
function renderProbe(selector: string, count: number): string {
  return `(() => {
    const shown = (el) => !el.closest('[style*="visibility: hidden"]');
    const check = () => {
      if (window.__rendered === undefined && [...document.querySelectorAll(${JSON.stringify(selector)})].filter(shown).length >= ${count}) window.__rendered = performance.now();
    };
    new MutationObserver(check).observe(document, { childList: true, subtree: true, attributes: true });
  })()`;
}

/**
 * What the probe recorded, and the page's first `/api/runs…` call (Resource Timing): its duration,
 * and when it started and ended since navigation start (before it: loading and starting the console's
 * script; after it: rendering).
 */
const READ_PROBE = `(() => {
  const first = performance.getEntriesByType('resource').find((e) => e.initiatorType === 'fetch' && new URL(e.name).pathname.startsWith('/api/runs'));
  const resources = performance.getEntriesByType('resource').map((e) => [new URL(e.name).pathname.slice(0, 60), Math.round(e.startTime), Math.round(e.responseEnd)]);
  return { ms: window.__rendered, api: first ? first.responseEnd - first.startTime : NaN, apiStart: first ? first.startTime : NaN, apiEnd: first ? first.responseEnd : NaN, resources };
})()`;

function log(line: string): void {
  process.stderr.write(`[bench:console] ${line}\n`);
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

function summary(name: string, samples: number[], cold?: number): Figure {
  return { name, unit: 'ms', median: round(median(samples), 1), p95: round(quantile(samples, 0.95), 1), samples: samples.length, ...(cold !== undefined ? { cold: round(cold, 1) } : {}) };
}

/** A workflow of `n` agent phases in levels of five, each depending on two phases of the level before. */
function dagWorkflow(n: number): Record<string, unknown> {
  const roles = ['planner', 'designer', 'coder', 'reviewer'];
  const phases = Array.from({ length: n }, (_, i) => {
    const level = Math.floor(i / 5);
    const col = i % 5;
    const deps = level === 0 ? [] : [...new Set([(level - 1) * 5 + col, (level - 1) * 5 + ((col + 1) % 5)])].filter((d) => d < n).map((d) => `p${d}`);
    return { name: `p${i}`, agent: roles[i % roles.length], timeout: 120, ...(deps.length > 0 ? { depends_on: deps } : {}) };
  });
  return { name: 'bench-dag', description: `${n} phases in levels of five`, agents: roles, phases };
}

async function main(): Promise<void> {
  const redis = await startPrivateRedis();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    FLEET_LOG_LEVEL: 'warn',
    REDIS_URL: redis.url,
    FLEET_QUEUE_PREFIX: PREFIX,
    FLEET_PROVIDER: 'offline',
    FLEET_OFFLINE_LATENCY_MS: '0',
    FLEET_RUN_RETENTION: '0',
    FLEET_ADMIN_KEY: ADMIN_KEY,
    FLEET_API_KEYS: `developer:${USER_KEY}`,
  };
  delete env.ANTHROPIC_API_KEY;
  delete env.OTEL_EXPORTER_OTLP_ENDPOINT;
  delete env.FLEET_HISTORY_URL;
  const children: Child[] = [];
  const conn = createRedis(redis.url, { name: 'bench-console' });
  let profile: string | undefined;
  let context: BrowserContext | undefined;
  try {
    children.push(
      ...(await Promise.all([
        startChild('fleet manager', FLEET_BIN, ['manager', '--port', String(port), '--host', '127.0.0.1'], env, 'HTTP API listening', 60_000),
        startChild('fleet agents', FLEET_BIN, ['agents', '--roles', 'planner,designer,coder,reviewer', '--concurrency', '8', '--grace', '1'], env, 'agents: serving', 60_000),
      ])),
    );
    const call = async <T>(method: string, path: string, key: string, body?: unknown): Promise<T> => {
      const res = await fetch(url + path, { method, headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
      return JSON.parse(text) as T;
    };
    const finished = async (id: string): Promise<string> => {
      for (;;) {
        const { status } = await call<{ status: string }>('GET', `/api/runs/${id}`, ADMIN_KEY);
        if (['completed', 'failed', 'cancelled'].includes(status)) return status;
        await new Promise((r) => setTimeout(r, 200));
      }
    };

    log('running the real runs the seed copies, and the DAG run');
    const small = await call<{ run_id: string }>('POST', '/api/runs', USER_KEY, { requirements: 'Build a tiny todo API', template: 'quick-fix', conversation_id: 'bench-conv' });
    const waiting = await call<{ run_id: string }>('POST', '/api/runs', ADMIN_KEY, {
      requirements: 'A plan to sign off',
      workflow: { name: 'bench-approval', agents: ['planner'], phases: [{ name: 'planning', agent: 'planner' }, { name: 'sign_off', type: 'approval', depends_on: ['planning'], timeout: 600 }] },
    });
    const dag = await call<{ run_id: string }>('POST', '/api/runs', ADMIN_KEY, { requirements: `A ${PHASES}-phase build`, workflow: dagWorkflow(PHASES) });
    for (;;) {
      const run = await call<{ status: string }>('GET', `/api/runs/${waiting.run_id}`, ADMIN_KEY);
      if (run.status === 'waiting') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await call('POST', `/api/runs/${waiting.run_id}/cancel`, ADMIN_KEY, { reason: 'benchmark seed' });
    const statuses = await Promise.all([finished(small.run_id), finished(waiting.run_id), finished(dag.run_id)]);
    log(`real runs: ${statuses.join(', ')}`);
    const userId = (await call<{ user_id: string }>('GET', `/api/runs/${small.run_id}`, USER_KEY)).user_id;

    log(`seeding ${RUNS} runs`);
    const seedStart = performance.now();
    const newest = Date.now() - 60_000;
    await seedRunCopies(conn, {
      prefix: PREFIX,
      templates: [small.run_id, small.run_id, small.run_id, waiting.run_id],
      count: RUNS,
      newest,
      copy: (i) => ({
        requirements: `${i % 100 === 7 ? `${SEARCH_WORD} board for ` : ''}${WORDS[i % WORDS.length]} ${WORDS[(i * 7) % WORDS.length]} feature number ${i}`,
        labels: { user_id: i % 5 === 0 ? userId : `user-${i % 5}`, ...(i % 50 === 3 ? { conversation_id: `conv-${i % 7}` } : {}) },
      }),
    });
    log(`seeded in ${Math.round(performance.now() - seedStart)} ms`);

    // API figures, measured from Node.
    const timeApi = async (path: string, key = ADMIN_KEY): Promise<{ figure: number[]; items: number }> => {
      let items = 0;
      await call('GET', path, key);
      const samples: number[] = [];
      for (let i = 0; i < SAMPLES; i++) {
        const t0 = performance.now();
        const body = await call<{ items: unknown[] }>('GET', path, key);
        samples.push(performance.now() - t0);
        items = body.items.length;
      }
      return { figure: samples, items };
    };
    const firstPage = await call<{ next_cursor: string | null }>('GET', `/api/runs?limit=${PAGE_SIZE}`, ADMIN_KEY);
    const apiQueries: Array<[string, string, string?]> = [
      ['API: runs list, first page', `/api/runs?limit=${PAGE_SIZE}`],
      ['API: runs list, page 2 (cursor)', `/api/runs?limit=${PAGE_SIZE}&cursor=${firstPage.next_cursor ?? ''}`],
      ['API: user key, its own runs', `/api/runs?limit=${PAGE_SIZE}`, USER_KEY],
      ['API: filter by user', `/api/runs?limit=${PAGE_SIZE}&user_id=user-3`],
      ['API: filter by conversation', `/api/runs?limit=${PAGE_SIZE}&conversation_id=conv-3`],
      ['API: filter by status (cancelled)', `/api/runs?limit=${PAGE_SIZE}&status=cancelled`],
      [`API: search "${SEARCH_WORD}"`, `/api/runs?limit=${PAGE_SIZE}&q=${SEARCH_WORD}`],
    ];
    const figures: Figure[] = [];
    const counts: Record<string, number> = {};
    for (const [name, path, key] of apiQueries) {
      const { figure, items } = await timeApi(path, key);
      figures.push(summary(name, figure));
      counts[name] = items;
      log(`${name}: ${items} rows, median ${round(median(figure), 1)} ms`);
    }

    // Browser figures.
    profile = await mkdtemp(join(tmpdir(), 'bench-console-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, viewport: { width: 1400, height: 900 } });
    // Signed in before any script of the page runs (the console keeps its key in sessionStorage).
    await context.addInitScript((key: string) => sessionStorage.setItem('agentfleet.console.key', key), ADMIN_KEY);
    const render = async (hash: string, ready: { selector: string; count: number }, profileTo?: string): Promise<{ ms: number; api: number; apiStart: number; apiEnd: number }> => {
      const page: Page = await context!.newPage();
      try {
        await page.addInitScript(renderProbe(ready.selector, ready.count));
        const cdp = profileTo ? await context!.newCDPSession(page) : undefined;
        if (cdp) {
          await cdp.send('Profiler.enable');
          await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
          await cdp.send('Profiler.start');
        }
        await page.goto(`${url}/ui/${hash}`);
        await page.waitForFunction('window.__rendered !== undefined', undefined, { timeout: 60_000 });
        if (cdp && profileTo) {
          const { profile: cpu } = await cdp.send('Profiler.stop');
          await writeFile(profileTo, JSON.stringify(cpu));
          const probe = await page.evaluate<{ ms: number; resources: Array<[string, number, number]> }>(READ_PROBE);
          log(`profiled ${hash}: shown at ${Math.round(probe.ms)} ms; requests (path, start, end ms): ${probe.resources.map((r) => r.join(' ')).join('; ')}`);
        }
        return await page.evaluate<{ ms: number; api: number; apiStart: number; apiEnd: number }>(READ_PROBE);
      } finally {
        await page.close();
      }
    };
    const timeRender = async (name: string, hash: string, ready: { selector: string; count: number }): Promise<void> => {
      const cold = await render(hash, ready);
      const samples: number[] = [];
      const apiSamples: number[] = [];
      const startSamples: number[] = [];
      const afterSamples: number[] = [];
      for (let i = 0; i < SAMPLES; i++) {
        const s = await render(hash, ready);
        samples.push(s.ms);
        apiSamples.push(s.api);
        startSamples.push(s.apiStart);
        afterSamples.push(s.ms - s.apiEnd);
      }
      figures.push(summary(name, samples, cold.ms));
      if (PROFILE_DIR) {
        await mkdir(PROFILE_DIR, { recursive: true });
        await render(hash, ready, join(PROFILE_DIR, `${name.replace(/[^a-z0-9]+/gi, '-')}.cpuprofile`));
      }
      figures.push(summary(`${name}: script loaded and started (navigation to first API call)`, startSamples));
      figures.push(summary(`${name}: first API call`, apiSamples));
      figures.push(summary(`${name}: rendering after the first API call`, afterSamples));
      log(`${name}: median ${round(median(samples), 1)} ms (cold ${round(cold.ms, 1)} ms)`);
    };
    await timeRender('first render: runs list (25 rows)', '#/runs', { selector: 'table.runs tbody tr', count: PAGE_SIZE });
    await timeRender(`first render: run page, ${PHASES}-phase DAG`, `#/runs/${dag.run_id}`, { selector: '.react-flow__node .status-completed', count: PHASES });

    const results = { bench: 'console', date: new Date().toISOString(), runs: RUNS, phases: PHASES, samples: SAMPLES, rows: counts, figures };
    await mkdir(OUT, { recursive: true });
    const file = join(OUT, `console-${results.date.replace(/[:.]/g, '-')}.json`);
    await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
    const lines = [
      `Console benchmark: ${RUNS} runs in Redis, a ${PHASES}-phase run, ${SAMPLES} samples each`,
      '',
      '| figure | median ms | p95 ms | cold ms |',
      '| --- | ---: | ---: | ---: |',
      ...figures.map((f) => `| ${f.name} | ${f.median} | ${f.p95} | ${f.cold ?? ''} |`),
      '',
      `results: ${file}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await context?.close().catch(() => undefined);
    if (profile) await rm(profile, { recursive: true, force: true });
    conn.disconnect();
    await stopAll(children);
    await redis.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:console: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
