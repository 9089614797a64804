/**
 * The browser side of the console tests: Debian's Chromium driven by playwright-core with a fresh
 * profile, against a manager HTTP API serving the built console under `/ui/`.
 *
 * Chromium must be installed (`apt-get install -y chromium`) and the console built (`npm run build`):
 * without either, {@link openConsoleBrowser} throws naming the fix; a console test never skips.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const CONSOLE_INDEX = fileURLToPath(new URL('../../apps/console/dist/index.html', import.meta.url));

/** Where the tests write the console screenshots the docs show. */
export const DOCS = fileURLToPath(new URL('../../docs/', import.meta.url));
/** Waits on page state (a locator appearing), ms; generous because the machine is shared and loaded. */
export const UI_WAIT_MS = 20_000;

export interface ConsoleBrowser {
  context: BrowserContext;
  /** A new tab signed in with `key` at `apiUrl`, on the runs list (each tab keeps its own key). */
  signedIn(apiUrl: string, key: string): Promise<Page>;
  close(): Promise<void>;
}

/**
 * Start Chromium with a new profile named after `name`.
 *
 * @throws Error naming the fix when the console is not built or Chromium is missing or does not start.
 */
export async function openConsoleBrowser(name: string): Promise<ConsoleBrowser> {
  if (!existsSync(CONSOLE_INDEX)) throw new Error(`the console is not built (${CONSOLE_INDEX} is missing): run \`npm run build\` at the repository root`);
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is not installed at ${CHROMIUM}: install Debian's package with \`apt-get update && apt-get install -y chromium\``);
  const profile = await mkdtemp(join(tmpdir(), `agentfleet-${name}-`));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, viewport: { width: 1400, height: 900 } });
  } catch (err) {
    await rm(profile, { recursive: true, force: true });
    throw new Error(`Chromium at ${CHROMIUM} did not start (${(err as Error).message.split('\n')[0]}); install or repair Debian's package: \`apt-get update && apt-get install -y chromium\``, { cause: err });
  }
  return {
    context,
    async signedIn(apiUrl, key) {
      const page = await context.newPage();
      await page.goto(`${apiUrl}/ui/`);
      await page.getByLabel('API key').fill(key);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Runs', level: 1 }).waitFor({ timeout: UI_WAIT_MS });
      return page;
    },
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
