/**
 * The chart's enforcement pieces rendered by the real helm binary: the ValidatingAdmissionPolicy and its binding
 * (only where Kubernetes has it), the exemptions handed identically to the policy and to the webhook, and the
 * settings that reach the sidecars (Akto verdicts, alerts, classifier). Their behaviour on a real API server is in
 * enforcement.test.ts.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { loadSettings, Settings } from '../../webhook/settings';
import { describeIf, findTools, renderChart, renderChartError, type ChartObject } from './harness';

const ROOT = path.resolve(__dirname, '../..');
const CHART = path.join(ROOT, 'charts/akto-agent-proxy');
const tools = findTools();

const render = (args: string[] = []): ChartObject[] => renderChart(tools.helm!, CHART, args);
const byKind = (objs: ChartObject[], kind: string): ChartObject[] => objs.filter((o) => o.kind === kind);
const settingsOf = (objs: ChartObject[]): Settings => {
  const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-webhook-settings'))!;
  return loadSettings({ WEBHOOK_SETTINGS_FILE: '/s.yaml' }, () => cm.data['settings.yaml']);
};
const expressions = (vap: ChartObject): string[] => vap.spec.validations.map((v: { expression: string }) => v.expression);

describeIf(!!tools.helm, 'helm')('chart: enforcement', () => {
  test('a ValidatingAdmissionPolicy + binding for enforced namespaces, only on Kubernetes >= 1.30 and while enabled', () => {
    const objs = render();
    const [vap] = byKind(objs, 'ValidatingAdmissionPolicy');
    const [binding] = byKind(objs, 'ValidatingAdmissionPolicyBinding');
    expect(vap.metadata.name).toBe('rel-akto-agent-proxy-enforced');
    expect(vap.spec.failurePolicy).toBe('Fail');
    expect(vap.spec.matchConstraints.resourceRules).toEqual([{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['pods', 'pods/ephemeralcontainers'] }]);
    expect(vap.spec.matchConditions).toBeUndefined(); // no exemptions by default
    expect(binding.spec).toEqual({
      policyName: vap.metadata.name,
      validationActions: ['Deny'],
      matchResources: { namespaceSelector: { matchExpressions: [
        { key: 'agent-proxy.akto.io/injection', operator: 'In', values: ['enforced'] },
        { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['akto-system', 'kube-system', 'kube-public', 'kube-node-lease'] },
      ] } },
    });
    // The sidecar image's repository, any tag or digest, plus configured ones.
    expect(expressions(vap).join('\n')).toContain("p.image.startsWith('akto-agent-proxy:')");
    const mirrored = render(['--set', 'image.repository=reg.example:5000/team/akto', '--set', `image.digest=sha256:${'a'.repeat(64)}`,
      '--set', 'enforcement.validatingAdmissionPolicy.sidecarImageRepositories={mirror.example/akto}']);
    const images = expressions(byKind(mirrored, 'ValidatingAdmissionPolicy')[0]).join('\n');
    expect(images).toContain("p.image.startsWith('reg.example:5000/team/akto@')");
    expect(images).toContain("p.image.startsWith('mirror.example/akto:')");

    expect(byKind(render(['--kube-version', '1.29.5']), 'ValidatingAdmissionPolicy')).toEqual([]);
    expect(byKind(render(['--set', 'enforcement.validatingAdmissionPolicy.enabled=false']), 'ValidatingAdmissionPolicyBinding')).toEqual([]);
    const audit = render(['--set', 'enforcement.validatingAdmissionPolicy.validationActions={Warn,Audit}']);
    expect(byKind(audit, 'ValidatingAdmissionPolicyBinding')[0].spec.validationActions).toEqual(['Warn', 'Audit']);
  });

  test('exemptions reach the policy (CEL) and the webhook (settings) from one set of values', () => {
    const objs = render([
      '--set', 'enforcement.exemptions.serviceAccounts={agents/batch,ops/runner}',
      '--set', 'enforcement.exemptions.podSelector.matchLabels.team=platform',
      '--set-json', 'enforcement.exemptions.podSelector.matchExpressions=[{"key":"tier","operator":"In","values":["batch","jobs"]},{"key":"example.com/legacy","operator":"DoesNotExist"}]',
      '--set', 'enforcement.exemptionContact=the platform team (#platform)',
    ]);
    const cel = byKind(objs, 'ValidatingAdmissionPolicy')[0].spec.matchConditions[0];
    expect(cel.name).toBe('not-exempt');
    expect(cel.expression).toContain('in ["agents/batch","ops/runner"]');
    expect(cel.expression).toContain("object.metadata.labels['team'] == 'platform'");
    expect(cel.expression).toContain("object.metadata.labels['tier'] in [\"batch\",\"jobs\"]");
    expect(cel.expression).toContain("!(has(object.metadata.labels) && 'example.com/legacy' in object.metadata.labels)");
    const s = settingsOf(objs);
    expect(s.enforcement).toMatchObject({
      exemptServiceAccounts: ['agents/batch', 'ops/runner'],
      exemptPodSelector: 'team=platform,tier in (batch,jobs),!example.com/legacy',
      exemptionContact: 'the platform team (#platform)',
    });
    expect(byKind(objs, 'ValidatingAdmissionPolicy')[0].spec.validations[1].message).toContain('Only the platform team (#platform) can exempt a pod');
  });

  test('custody: settings for the webhook, and validations only when enforcement.requireCustody', () => {
    expect(settingsOf(render()).custody).toEqual({ enabled: true, envVars: ['HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'HF_API_TOKEN', 'HF_AUTHORIZATION', 'OPENAI_API_KEY'], placeholder: 'held-by-akto-proxy' });
    const plain = expressions(byKind(render(), 'ValidatingAdmissionPolicy')[0]);
    const custody = expressions(byKind(render(['--set', 'enforcement.requireCustody=true', '--set-json',
      'sidecar.upstreamAuthorization=[{"envVar":"OPENAI_BASE_URL","secretName":"hf-token","key":"token"}]']), 'ValidatingAdmissionPolicy')[0]);
    expect(custody.length - plain.length).toBe(4);
    expect(custody.join('\n')).toContain('in ["hf-token/token"]');
    expect(custody.join('\n')).toContain("e.value == 'held-by-akto-proxy'");
  });

  test('the policy admits every variable the webhook gives the sidecar (all injecting goldens)', () => {
    const vap = byKind(render(), 'ValidatingAdmissionPolicy')[0];
    const pattern = /e\.name\.matches\('([^']+)'\)/.exec(expressions(vap).join('\n'))![1];
    const allowed = new RegExp(pattern);
    const dir = path.join(ROOT, 'test/fixtures/webhook/expected');
    const names = new Set<string>();
    for (const f of readdirSync(dir)) {
      const golden = JSON.parse(readFileSync(path.join(dir, f), 'utf8'));
      if (golden.result !== 'injected') continue;
      const spec = golden.pod.spec;
      for (const c of [...spec.containers, ...spec.initContainers ?? []]) if (c.name === 'akto-proxy') for (const e of c.env) names.add(e.name);
    }
    expect(names.size).toBeGreaterThan(25);
    expect([...names].filter((n) => !allowed.test(n))).toEqual([]);
    expect(allowed.test('NODE_OPTIONS')).toBe(false);
  });

  test('the sidecars get Akto inline verdicts, alerts (URL from a Secret in each agent namespace) and the classifier', () => {
    const defaults = settingsOf(render());
    expect(defaults.akto.guardrails).toBe('off'); // "off" quoted: YAML 1.1 would read a bare off as false
    expect(defaults.alerts.secretName).toBe('');
    expect(defaults.classifier.url).toBe('');

    const objs = render(['--set', 'agentNamespaces={team-a}', '--set', 'akto.guardrails=both', '--set', 'akto.guardrailsOnError=block',
      '--set', 'alerts.webhookUrl=https://hooks.slack.example/T0/B0/xyz', '--set', 'alerts.format=slack', '--set', 'classifier.enabled=true']);
    const s = settingsOf(objs);
    expect(s.akto).toMatchObject({ guardrails: 'both', guardrailsOnError: 'block', guardrailsTimeoutMs: 1500, connector: 'akto-agent-proxy' });
    expect(s.alerts).toMatchObject({ secretName: 'akto-agent-proxy-alerts', format: 'slack', minSeverity: 'medium' });
    expect(s.classifier).toEqual({ url: 'http://rel-akto-agent-proxy-classifier.akto-system.svc:8090', timeoutMs: 50 });
    const secret = objs.find((o) => o.kind === 'Secret' && o.metadata.name === 'akto-agent-proxy-alerts')!;
    expect(secret.metadata.namespace).toBe('team-a');
    expect(Buffer.from(secret.data.ALERT_WEBHOOK_URL, 'base64').toString()).toBe('https://hooks.slack.example/T0/B0/xyz');
    // Your own Secret: the chart creates none and the sidecars read yours.
    const own = render(['--set', 'agentNamespaces={team-a}', '--set', 'alerts.existingSecret=my-alerts']);
    expect(own.some((o) => o.kind === 'Secret' && o.metadata.name === 'akto-agent-proxy-alerts')).toBe(false);
    expect(settingsOf(own).alerts.secretName).toBe('my-alerts');
    expect(settingsOf(render(['--set', 'classifier.url=http://classifier.ml.svc:8090'])).classifier.url).toBe('http://classifier.ml.svc:8090');
  });

  test.each([
    [['--set', 'enforcement.exemptions.serviceAccounts={batch-runner}'], /serviceAccounts.0: Does not match pattern/],
    [['--set-json', 'enforcement.exemptions.podSelector.matchExpressions=[{"key":"a","operator":"Gt","values":["1"]}]'], /operator must be one of the following/],
    [['--set', "enforcement.exemptions.podSelector.matchLabels.team=a' || true || '"], /Does not match pattern/],
    [['--set', 'enforcement.validatingAdmissionPolicy.validationActions={Block}'], /validationActions.0 must be one of the following/],
    [['--set', 'akto.guardrails=on'], /akto.guardrails must be one of the following/],
    [['--set', 'custody.placeholder='], /custody.placeholder: Does not match pattern/],
    [['--set', 'alerts.minSeverity=loud'], /alerts.minSeverity must be one of the following/],
    [['--set', 'classifier.url=http://user:pw@classifier:8090'], /classifier.url: Does not match pattern/],
  ])('rejects bad values with a clear message: %j', (args, message) => {
    expect(renderChartError(tools.helm!, CHART, args as string[])).toMatch(message);
  });
});
