/**
 * The shipped Prometheus configuration: `promtool` (Debian's `prometheus` package, installed by
 * scripts/ensure-tools.sh) checks the scrape config and the alert rules, and runs the rules' unit
 * tests (deploy/prometheus/alerts.test.yml): each alert fires on the series that should fire it and
 * stays quiet on the others.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const run = promisify(execFile);
const dir = fileURLToPath(new URL('../deploy/prometheus/', import.meta.url));

async function promtool(...args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run('promtool', args, { cwd: dir });
    return stdout + stderr;
  } catch (err) {
    const e = err as { code?: string; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('promtool is not installed: run `bash scripts/ensure-tools.sh` (Debian package prometheus)', { cause: err });
    throw new Error(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err });
  }
}

describe('deploy/prometheus', () => {
  it('alerts.yml passes promtool check rules and holds the five alerts', async () => {
    expect(await promtool('check', 'rules', 'alerts.yml')).toContain('SUCCESS: 5 rules found');
    const rules = parse(await readFile(`${dir}alerts.yml`, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string }> }> };
    expect(rules.groups.flatMap((g) => g.rules.map((r) => r.alert)).sort()).toEqual([
      'FleetPhaseFailureRateHigh',
      'FleetProviderRateLimited',
      'FleetQueueOldestWaitHigh',
      'FleetRunsStuck',
      'FleetSpansDropped',
    ]);
  });

  it('the alert rules pass their promtool unit tests', async () => {
    expect(await promtool('test', 'rules', 'alerts.test.yml')).toContain('SUCCESS');
  });

  it('prometheus.yml loads the alert rules and passes promtool check config', async () => {
    const config = parse(await readFile(`${dir}prometheus.yml`, 'utf8')) as { rule_files?: string[] };
    expect(config.rule_files).toEqual(['alerts.yml']);
    expect(await promtool('check', 'config', 'prometheus.yml')).toContain('SUCCESS');
  });

  it('the Grafana dashboard picks its data source, role and workflow from variables and uses $__rate_interval', async () => {
    const dashboard = JSON.parse(await readFile(fileURLToPath(new URL('../deploy/grafana/dashboards/agentfleet.json', import.meta.url)), 'utf8')) as {
      templating: { list: Array<{ name: string; type: string }> };
      panels: Array<{ id: number; datasource: { uid: string }; fieldConfig?: { defaults?: { noValue?: string } }; targets: Array<{ expr: string; datasource: { uid: string } }> }>;
    };
    expect(dashboard.templating.list.map((v) => `${v.name}:${v.type}`)).toEqual(['datasource:datasource', 'role:query', 'workflow:query']);
    for (const panel of dashboard.panels) {
      expect(panel.datasource.uid, `panel ${panel.id}`).toBe('${datasource}');
      expect(panel.fieldConfig?.defaults?.noValue, `panel ${panel.id} shows 0, not "No data"`).toBe('0');
      for (const target of panel.targets) {
        expect(target.datasource.uid).toBe('${datasource}');
        // Fixed windows break at scrape intervals other than the one they were written for.
        expect(target.expr, `panel ${panel.id}`).not.toMatch(/\[\d+[smh]\]/);
        // Metric families with a unit carry its suffix (as the /metrics endpoint and a Collector name them).
        expect(target.expr).not.toMatch(/fleet_(phase|run)_duration_(bucket|count)|fleet_queue_oldest_wait\b(?!_)|fleet_llm_cost_total/);
      }
    }
  });
});
