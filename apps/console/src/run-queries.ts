/**
 * The queries of a run's page, shared by the page and by the router, which starts them as soon as
 * the address names a run: the answers then arrive while the page's code (and the graph library)
 * is still loading, instead of after it.
 */
import { queryOptions, type QueryClient } from '@tanstack/react-query';
import { api, type RunDetail, type RunWorkflow } from './api.js';

/** `GET /api/runs/:id`: the run's result, live while it runs. */
export function runQuery(runId: string) {
  return queryOptions({ queryKey: ['run', runId], queryFn: () => api<RunDetail>('GET', `/api/runs/${encodeURIComponent(runId)}`) });
}

/** `GET /api/runs/:id/workflow`: the workflow the run executes (it never changes). */
export function runWorkflowQuery(runId: string) {
  return queryOptions({
    queryKey: ['run-workflow', runId],
    queryFn: () => api<RunWorkflow>('GET', `/api/runs/${encodeURIComponent(runId)}/workflow`),
    staleTime: Infinity,
  });
}

/** Start both queries of a run's page (a no-op for those already held or in flight). */
export function prefetchRun(client: QueryClient, runId: string): void {
  void client.prefetchQuery(runQuery(runId));
  void client.prefetchQuery(runWorkflowQuery(runId));
}
