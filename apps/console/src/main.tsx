/**
 * The AgentFleet console: sign in with an API key, then the runs list (`#/runs`) and a page per run
 * (`#/runs/<id>`), workflows (`#/workflows`), schedules (`#/schedules`), triggers (`#/triggers`) and analytics (`#/analytics`). Hash routes, so the manager serves one index.html under `/ui/`.
 * An address may carry the key to sign in with (`#/runs/<id>?key=<key>`, printed by `fleet run --console`).
 */
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode, Suspense, lazy, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import './styles.css';
import { ApiError, storeKey, storedKey } from './api.js';
import { prefetchRun } from './run-queries.js';
import { RunsPage } from './runs-page.js';
import { SchedulesPage } from './schedules-page.js';
import { SignIn } from './sign-in.js';
import { TriggersPage } from './triggers-page.js';
import { WorkersPage } from './workers-page.js';

// The graph library (React Flow, dagre) is loaded with the pages that draw a graph, and the charts
// library with the analytics page: the runs list, the first page, starts without either.
const RunPage = lazy(() => import('./run-page.js').then((m) => ({ default: m.RunPage })));
const WorkflowsPage = lazy(() => import('./workflows-page.js').then((m) => ({ default: m.WorkflowsPage })));
const AnalyticsPage = lazy(() => import('./analytics-page.js').then((m) => ({ default: m.AnalyticsPage })));

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // 4xx answers are final: show them instead of asking again.
      retry: (count, err) => !(err instanceof ApiError && err.status < 500) && count < 2,
      refetchOnWindowFocus: false,
    },
  },
});

/**
 * A key handed over in the address (`#/runs/<id>?key=<key>`, as `fleet run --console` prints it):
 * kept for this tab like a signed-in key, then removed from the address so it is not left in the
 * history or a copied link. The fragment never reaches the server.
 */
function takeKeyFromAddress(): void {
  const [route = '', query] = window.location.hash.split('?', 2);
  if (query === undefined) return;
  const params = new URLSearchParams(query);
  const key = params.get('key');
  if (!key) return;
  storeKey(key);
  params.delete('key');
  const rest = params.toString();
  window.history.replaceState(null, '', `${window.location.pathname}${window.location.search}${route}${rest ? `?${rest}` : ''}`);
}

takeKeyFromAddress();

/** The run a route names (`/runs/<id>`), or undefined. */
function runOf(route: string): string | undefined {
  const id = /^\/runs\/([^/]+)$/.exec(route)?.[1];
  return id === undefined ? undefined : decodeURIComponent(id);
}

/** Start a run page's queries while its code loads (only with a key: without one the page is not shown). */
function prefetchFor(hash: string): void {
  const runId = runOf(hash.replace(/^#/, ''));
  if (runId !== undefined && storedKey()) prefetchRun(queryClient, runId);
}

function useHashRoute(): string {
  const [hash, setHash] = useState(() => {
    prefetchFor(window.location.hash);
    return window.location.hash;
  });
  useEffect(() => {
    const onChange = () => {
      prefetchFor(window.location.hash);
      setHash(window.location.hash);
    };
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return hash.replace(/^#/, '') || '/runs';
}

function App() {
  const [key, setKey] = useState(storedKey);
  const route = useHashRoute();
  if (!key) {
    return (
      <SignIn
        onSignedIn={(k) => {
          storeKey(k);
          setKey(k);
        }}
      />
    );
  }
  const runMatch = /^\/runs\/([^/]+)$/.exec(route);
  return (
    <>
      <header className="topbar">
        <a className="brand" href="#/runs">
          AgentFleet console
        </a>
        <nav aria-label="Main">
          <a href="#/runs" aria-current={route.startsWith('/runs') ? 'page' : undefined}>
            Runs
          </a>
          <a href="#/workflows" aria-current={route === '/workflows' ? 'page' : undefined}>
            Workflows
          </a>
          <a href="#/schedules" aria-current={route === '/schedules' ? 'page' : undefined}>
            Schedules
          </a>
          <a href="#/workers" aria-current={route === '/workers' ? 'page' : undefined}>
            Workers
          </a>
          <a href="#/triggers" aria-current={route === '/triggers' ? 'page' : undefined}>
            Triggers
          </a>
          <a href="#/analytics" aria-current={route === '/analytics' ? 'page' : undefined}>
            Analytics
          </a>
        </nav>
        <button
          type="button"
          onClick={() => {
            storeKey(null);
            queryClient.clear();
            setKey(null);
          }}
        >
          Sign out
        </button>
      </header>
      <main>
        <Suspense fallback={<p role="status" className="muted">Loading…</p>}>
          {runMatch?.[1] ? (
            <RunPage key={runMatch[1]} runId={decodeURIComponent(runMatch[1])} />
          ) : route === '/workflows' ? (
            <WorkflowsPage />
          ) : route === '/schedules' ? (
            <SchedulesPage />
          ) : route === '/workers' ? (
            <WorkersPage />
          ) : route === '/triggers' ? (
            <TriggersPage />
          ) : route === '/analytics' ? (
            <AnalyticsPage />
          ) : (
            <RunsPage />
          )}
        </Suspense>
      </main>
    </>
  );
}

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');
createRoot(root).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <App />
    </QueryClientProvider>
  </StrictMode>,
);
