import { parseAllDocuments } from 'yaml';
import { explain, podOf } from '../../../webhook/explain';
import { loadSettings } from '../../../webhook/settings';

const settings = loadSettings({ SIDECAR_IMAGE: 'akto-agent-proxy:test' });

const manifests = `
apiVersion: apps/v1
kind: Deployment
metadata: { name: agent, namespace: agents }
spec:
  template:
    metadata: { labels: { app: agent } }
    spec:
      containers:
        - name: agent
          image: a
          env: [{ name: OPENAI_BASE_URL, value: "https://llm.example.com/v1" }]
---
apiVersion: batch/v1
kind: CronJob
metadata: { name: nightly }
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{ name: job, image: j }]
---
apiVersion: v1
kind: ConfigMap
metadata: { name: x }
`;

describe('explain (offline inject)', () => {
  it('finds the pod template of workloads', () => {
    const docs = parseAllDocuments(manifests).map((d) => d.toJS());
    expect(podOf(docs[0])).toMatchObject({ metadata: { labels: { app: 'agent' } } });
    expect(podOf(docs[1])).toMatchObject({ spec: { containers: [{ name: 'job' }] } });
    expect(podOf(docs[2])).toBeUndefined();
  });

  it('prints the decision, the warnings and the injected pod', () => {
    const out = explain(manifests, { cluster: { nativeSidecars: true }, showPatch: false }, settings);
    expect(out).toContain('# Deployment/agent in namespace agents: injected (native)');
    expect(out).toContain('name: akto-proxy');
    expect(out).toContain('value: http://127.0.0.1:8080');
    expect(out).toMatch(/# CronJob\/nightly in namespace default: skipped \(no-url-env\)\n# warning: agent-proxy\.akto\.io: no container sets/);
    expect(out).toContain('# ConfigMap/x: no pod template; nothing to inject');
  });

  it('judges as in an enforced namespace on request: what would be skipped is refused', () => {
    const out = explain(manifests, { enforced: true, cluster: { nativeSidecars: true }, showPatch: false }, settings);
    expect(out).toContain('# Deployment/agent in namespace agents: injected (native)');
    expect(out).toMatch(/# CronJob\/nightly in namespace default: denied \(enforced-no-url-env\): agent-proxy\.akto\.io: namespace "default" is enforced/);
  });

  it('prints the JSON Patch on request', () => {
    const out = explain(manifests, { namespace: 'kube-system', cluster: { nativeSidecars: false }, showPatch: true }, settings);
    expect(out).toContain('skipped (excluded-namespace)');
    const agents = explain(manifests.split('---')[0], { cluster: { nativeSidecars: false }, showPatch: true }, settings);
    expect(agents).toContain('"path": "/spec/containers/0"');
  });
});
