/**
 * deploy/kubernetes as a cluster would get it: rendered with `kubectl kustomize`, and every object
 * validated against the Kubernetes OpenAPI schemas (`kubernetes-models`) or KEDA's CRD schema
 * (`@kubernetes-models/keda`), then checked for what the deployment promises.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const run = promisify(execFile);
const base = fileURLToPath(new URL('../deploy/kubernetes/', import.meta.url));

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
}

async function rendered(): Promise<K8sObject[]> {
  try {
    const { stdout } = await run('kubectl', ['kustomize', base], { maxBuffer: 16 * 1024 * 1024 });
    return parseAllDocuments(stdout).map((d) => d.toJS() as K8sObject);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') throw new Error('kubectl is not installed: run `bash scripts/ensure-tools.sh`', { cause: err });
    throw err;
  }
}

/** The model class of an object's apiVersion/kind: core types from kubernetes-models, KEDA's from its package. */
async function modelOf(obj: K8sObject): Promise<new (data: K8sObject) => { validate(): void }> {
  const [group, version] = obj.apiVersion.includes('/') ? obj.apiVersion.split('/') : ['', obj.apiVersion];
  const specifier =
    group === 'keda.sh'
      ? `@kubernetes-models/keda/keda.sh/${version}/${obj.kind}`
      : `kubernetes-models/${group === '' ? '' : `${group}/`}${version}/${obj.kind}`;
  const mod = (await import(specifier)) as Record<string, new (data: K8sObject) => { validate(): void }>;
  const model = mod[obj.kind];
  if (!model) throw new Error(`no model for ${obj.apiVersion} ${obj.kind} in ${specifier}`);
  return model;
}

describe('deploy/kubernetes', () => {
  it('renders with kubectl kustomize, and every object is valid against its schema', async () => {
    const objects = await rendered();
    expect(objects.length).toBe(20);
    for (const obj of objects) {
      const Model = await modelOf(obj);
      expect(() => new Model(obj).validate(), `${obj.kind} ${obj.metadata.name}`).not.toThrow();
      expect(obj.metadata.labels?.['app.kubernetes.io/part-of'], `${obj.kind} ${obj.metadata.name}`).toBe('agentfleet');
    }
  });

  it('has a manager Deployment and Service, an agents Deployment with resource requests, a PDB and a KEDA ScaledObject per role', async () => {
    const objects = await rendered();
    const named = (kind: string) => objects.filter((o) => o.kind === kind).map((o) => o.metadata.name).sort();
    const roles = ['coder', 'designer', 'planner', 'reviewer', 'tools'];
    const agents = roles.map((r) => `agentfleet-agents-${r}`);
    expect(named('Deployment')).toEqual([...agents, 'agentfleet-manager'].sort());
    expect(named('Service')).toEqual(['agentfleet-manager']);
    expect(named('PodDisruptionBudget')).toEqual([...agents, 'agentfleet-manager'].sort());
    expect(named('ScaledObject')).toEqual(agents);
    expect(named('ConfigMap')).toEqual(['agentfleet-config']);
    expect(named('Secret')).toEqual(['agentfleet-secrets']);

    type Deployment = { spec: { template: { spec: { containers: Array<{ args: string[]; resources?: { requests?: Record<string, string> } }> } } } };
    for (const role of roles) {
      const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === `agentfleet-agents-${role}`) as unknown as Deployment;
      const container = deployment.spec.template.spec.containers[0]!;
      expect(container.args.slice(0, 3)).toEqual(['agents', '--roles', role]);
      expect(Object.keys(container.resources?.requests ?? {}).sort()).toEqual(['cpu', 'memory']);

      const scaled = objects.find((o) => o.kind === 'ScaledObject' && o.metadata.name === `agentfleet-agents-${role}`) as unknown as {
        spec: { scaleTargetRef: { name: string }; triggers: Array<{ type: string; metadata: { query: string } }> };
      };
      expect(scaled.spec.scaleTargetRef.name).toBe(`agentfleet-agents-${role}`);
      expect(scaled.spec.triggers.map((t) => t.type)).toEqual(['prometheus', 'prometheus']);
      expect(scaled.spec.triggers[0]!.metadata.query).toBe(`max(fleet_queue_oldest_wait_seconds{fleet_agent_role="${role}"})`);
      expect(scaled.spec.triggers[1]!.metadata.query).toContain(`fleet_queue_jobs{fleet_agent_role="${role}"`);
    }
  });
});
