/** The classifier (model tier) templates of the chart, rendered by the real helm binary. */
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describeIf, findTools, helm } from './harness';

const CHART = path.resolve(__dirname, '../../charts/akto-agent-proxy');
const tools = findTools();

type Obj = { kind: string; metadata: { name: string }; spec: any };

function render(args: string[]): Obj[] {
  const out = helm(tools.helm!, undefined, ['template', 'rel', CHART, '-n', 'akto-system', '--skip-tests', ...args]);
  return parseAllDocuments(out).map((d) => d.toJSON()).filter(Boolean);
}

describeIf(!!tools.helm, 'helm')('chart: classifier', () => {
  test('renders nothing of the model tier by default', () => {
    expect(render([]).filter((o) => o.metadata.name.endsWith('-classifier'))).toEqual([]);
  });

  test('classifier.enabled: a restricted Deployment running the third command, a Service, a PDB; the HPA on request', () => {
    const objs = render(['--set', 'classifier.enabled=true']);
    const kinds = objs.filter((o) => o.metadata.name === 'rel-akto-agent-proxy-classifier').map((o) => o.kind).sort();
    expect(kinds).toEqual(['Deployment', 'PodDisruptionBudget', 'Service']);
    const dep = objs.find((o) => o.kind === 'Deployment' && o.metadata.name.endsWith('-classifier'))!;
    const pod = dep.spec.template.spec;
    const c = pod.containers[0];
    expect(c.command).toEqual(['node', 'dist/classifier/main.js']);
    expect(dep.spec.replicas).toBe(2);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(dep.spec.template.metadata.labels['agent-proxy.akto.io/inject']).toBe('false');
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    const withHpa = render(['--set', 'classifier.enabled=true', '--set', 'classifier.hpa.enabled=true', '--set', 'classifier.hpa.maxReplicas=6']);
    const hpa = withHpa.find((o) => o.kind === 'HorizontalPodAutoscaler')!;
    expect(hpa.spec).toMatchObject({ minReplicas: 2, maxReplicas: 6, scaleTargetRef: { name: 'rel-akto-agent-proxy-classifier' } });
    expect(withHpa.find((o) => o.kind === 'Deployment' && o.metadata.name.endsWith('-classifier'))!.spec.replicas).toBeUndefined();
  });

  test('rejects an unknown classifier value', () => {
    expect(() => render(['--set', 'classifier.colour=red'])).toThrow(/colour/);
  });
});
