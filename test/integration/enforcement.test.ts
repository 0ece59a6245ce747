/**
 * Issue 19 on a real kube-apiserver: the chart installed with enforcement values, the webhook running locally with the
 * chart's settings file and its service account's token (so the events RBAC is the chart's). First with the webhook
 * up: enforced namespaces refuse opt-outs unless exempt, custody replaces the agent's token, opt-outs in enabled
 * namespaces leave an Event on the owner. Then with the webhook stopped (failurePolicy Ignore) and finally removed:
 * the ValidatingAdmissionPolicy alone refuses what would run unguarded, admits exempt pods and pods that carry the
 * sidecar, and keeps running pods from losing it (sidecar image swap, ephemeral containers).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startStubUpstream, type StubUpstream } from '../fixtures/stub-upstream';
import {
  Container, ControlPlane, LocalWebhook, Pod, TestCa, describeIf, eventually, findTools, freePort, helm, missingForWebhookSuites, renderSettingsFile,
  runLikeKubelet, startLocalWebhook, waitForStartupProbe,
} from './harness';

const tools = findTools();
const missing = missingForWebhookSuites(tools);

const CHART = path.resolve(__dirname, '../../charts/akto-agent-proxy');
const RELEASE_NS = 'akto-system';
const WEBHOOK_SA = 'akto-akto-agent-proxy-webhook';
const ENFORCED = 'agents-enforced';
const ENABLED = 'agents-enabled';
const UPSTREAM = 'https://llm.example.com/v1';
const PLACEHOLDER = 'held-by-akto-proxy';
const SIDECAR_IMAGE = 'registry.example/akto-agent-proxy:0.1.0';

jest.setTimeout(240_000);

type Env = NonNullable<Container['env']>;
interface PodOpts {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  env?: Env;
  sa?: string;
  owner?: { name: string; uid: string };
  spec?: Record<string, unknown>;
  containers?: Container[];
}

function agentPod(name: string, o: PodOpts = {}): Pod & Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name, namespace: '', labels: o.labels ?? {}, annotations: o.annotations ?? {},
      ...(o.owner ? { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: o.owner.name, uid: o.owner.uid, controller: true }] } : {}),
    },
    spec: {
      ...(o.sa ? { serviceAccountName: o.sa } : {}),
      containers: o.containers ?? [{ name: 'agent', image: 'agent:1', env: o.env ?? [{ name: 'OPENAI_BASE_URL', value: UPSTREAM }, { name: 'HF_TOKEN', value: 'hf_real_token' }] }],
      ...o.spec,
    },
  };
}

const sidecarOf = (pod: Pod): Container | undefined => [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find((c) => c.name === 'akto-proxy');
const envOf = (c: Container, name: string) => c.env?.find((e) => e.name === name);
const messageOf = (text: string): string => (JSON.parse(text) as { message?: string }).message ?? text;

/** A stored pod as a new create request: server-set fields removed, a new name. */
function resubmit(stored: Pod, name: string, change: (p: Pod) => void = () => undefined): Pod {
  const copy = structuredClone(stored) as Pod & { status?: unknown; metadata: Record<string, unknown> };
  for (const k of ['uid', 'resourceVersion', 'creationTimestamp', 'managedFields', 'generation']) delete copy.metadata[k];
  delete copy.status;
  copy.metadata.name = name;
  change(copy);
  return copy;
}

describeIf(!missing, missing)('enforced namespaces on a real kube-apiserver', () => {
  let cp: ControlPlane;
  let webhook: LocalWebhook | undefined;
  let webhookCa: TestCa;
  let webhookUrl: string;
  let guarded: Pod; // an enforced pod the webhook injected, as stored
  let upstream: StubUpstream;
  let sidecarPorts: string[];
  const installArgs = (extra: string[] = []): string[] => [
    '--set', `webhook.url=${webhookUrl}`, '--set', 'certs.mode=provided', '--set', 'certs.provided.existingSecret=local-webhook-tls',
    ...sidecarPorts,
    '--set', `webhook.caBundle=${Buffer.from(webhookCa.cert).toString('base64')}`,
    '--set', `sidecar.image=${SIDECAR_IMAGE}`, '--set', 'tests.enabled=false',
    '--set', `enforcement.exemptions.serviceAccounts={${ENFORCED}/batch-runner}`,
    '--set', 'enforcement.exemptions.podSelector.matchLabels.team=platform',
    '--set', 'enforcement.exemptionContact=the platform team (#platform)',
    '--set', 'enforcement.requireCustody=true',
    '--set-json', 'sidecar.upstreamAuthorization=[{"envVar":"OPENAI_BASE_URL","secretName":"hf-token","key":"token"}]',
    ...extra,
  ];
  const create = (ns: string, pod: object, dryRun = false) => cp.api.createPod(ns, { ...pod, metadata: { ...(pod as Pod).metadata, namespace: ns } }, dryRun);

  beforeAll(async () => {
    // The endpoint needs its token, as a private Hugging Face endpoint does.
    upstream = await startStubUpstream({ authorization: 'Bearer hf_secret_e2e' });
    // Free loopback ports: the custody test runs the sidecar on this host, not in a pod network namespace.
    sidecarPorts = ['--set', `sidecar.proxyPort=${await freePort()}`, '--set', `sidecar.adminPort=${await freePort()}`];
    cp = await ControlPlane.start({ apiserver: tools.apiserver!, etcd: tools.etcd! });
    webhookCa = new TestCa('akto-test-webhook-ca');
    const port = await freePort();
    webhookUrl = `https://127.0.0.1:${port}/mutate`;
    helm(tools.helm!, cp.kubeconfig, ['install', 'akto', CHART, '-n', RELEASE_NS, '--create-namespace', ...installArgs()]);
    await cp.api.createNamespace(ENFORCED, { 'agent-proxy.akto.io/injection': 'enforced' });
    await cp.api.createNamespace(ENABLED, { 'agent-proxy.akto.io/injection': 'enabled' });
    // The chart's settings file and the chart's service account: Events go out with exactly the chart's RBAC.
    const env = {
      WEBHOOK_SETTINGS_FILE: renderSettingsFile(tools.helm!, CHART, RELEASE_NS, installArgs(), cp.dir),
      KUBECONFIG: cp.writeKubeconfig('webhook-sa.kubeconfig', await cp.serviceAccountToken(RELEASE_NS, WEBHOOK_SA)),
      LOG_LEVEL: 'info', POD_NAME: 'webhook-0',
    };
    webhook = await startLocalWebhook(env, webhookCa, port);
    await eventually(async () => {
      const res = await create(ENFORCED, agentPod('probe'), true);
      return res.status === 201 && !!sidecarOf(res.body);
    }, 30_000, 'the webhook to be called for the enforced namespace');
  });

  afterAll(async () => {
    await webhook?.stop();
    await cp?.stop();
    await upstream?.close();
  });

  describe('with the webhook running', () => {
    test('an agent pod is injected, its URL points at the sidecar and its token became a placeholder (the policy admits it)', async () => {
      const res = await create(ENFORCED, agentPod('agent-1'));
      expect(res.status).toBe(201);
      guarded = res.body;
      const sidecar = sidecarOf(guarded)!;
      expect(sidecar.image).toBe(SIDECAR_IMAGE);
      const app = guarded.spec.containers.find((c) => c.name === 'agent')!;
      expect(envOf(app, 'OPENAI_BASE_URL')?.value).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(envOf(app, 'HF_TOKEN')?.value).toBe(PLACEHOLDER);
      expect(JSON.stringify(guarded)).not.toContain('hf_real_token');
      expect(envOf(sidecar, 'UPSTREAM_AUTHORIZATION')?.valueFrom).toEqual({ secretKeyRef: { name: 'hf-token', key: 'token' } });
    });

    test('a pod asking for the inbound listener is injected and admitted like any other; the takeover does not weaken the egress checks', async () => {
      const pod = agentPod('inbound-1', { annotations: { 'agent-proxy.akto.io/inbound-port': 'http' } });
      (pod.spec.containers[0] as Container & { ports?: unknown }).ports = [{ name: 'http', containerPort: 8000 }];
      const res = await create(ENFORCED, pod);
      expect(res.status).toBe(201);
      const sidecar = sidecarOf(res.body)! as Container & { ports: Array<{ name?: string }> };
      expect(envOf(sidecar, 'INBOUND_APP_URL')?.value).toBe('http://127.0.0.1:8000');
      expect(sidecar.ports.map((p) => p.name)).toContain('http');
      expect(envOf(res.body.spec.containers.find((c) => c.name === 'agent')!, 'HF_TOKEN')?.value).toBe(PLACEHOLDER);
    });

    test('custody end to end: the agent\'s own key gets 401 at the endpoint, its call through the sidecar succeeds', async () => {
      await cp.api.must('POST', `/api/v1/namespaces/${ENFORCED}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'hf-token' }, stringData: { token: 'Bearer hf_secret_e2e' } });
      // The URL from a ConfigMap: a literal loopback URL would be taken for this pod's own port and refused here.
      await cp.api.must('POST', `/api/v1/namespaces/${ENFORCED}/configmaps`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'llm' }, data: { url: `${upstream.url}/v1` } });
      const res = await create(ENFORCED, agentPod('custody-e2e', { env: [
        { name: 'OPENAI_BASE_URL', valueFrom: { configMapKeyRef: { name: 'llm', key: 'url' } } },
        { name: 'OPENAI_API_KEY', value: 'hf_secret_e2e' },
      ] }));
      expect(res.status).toBe(201);
      const app = res.body.spec.containers.find((c) => c.name === 'agent')!;
      const agentKey = envOf(app, 'OPENAI_API_KEY')!.value!;
      expect(agentKey).toBe(PLACEHOLDER);
      const dir = mkdtempSync(path.join(os.tmpdir(), 'akto-custody-'));
      const run = await runLikeKubelet(cp, res.body, sidecarOf(res.body)!, dir);
      try {
        await waitForStartupProbe(run, sidecarOf(res.body)!);
        const direct = new OpenAI({ baseURL: `${upstream.url}/v1`, apiKey: agentKey, maxRetries: 0 });
        await expect(direct.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 401 });
        // The check has teeth: the real key would have worked.
        const withRealKey = new OpenAI({ baseURL: `${upstream.url}/v1`, apiKey: 'hf_secret_e2e', maxRetries: 0 });
        expect((await withRealKey.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] })).choices).toHaveLength(1);
        const guardedClient = new OpenAI({ baseURL: envOf(app, 'OPENAI_BASE_URL')!.value!, apiKey: agentKey, maxRetries: 0 });
        const answer = await guardedClient.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hello through the guard' }] });
        expect(answer.choices[0].message.content).toBe('Echo: hello through the guard');
        expect(upstream.requests.at(-1)!.headers.authorization).toBe('Bearer hf_secret_e2e');
      } finally {
        if (run.child.exitCode === null && run.child.signalCode === null) {
          const exited = new Promise((r) => run.child.once('exit', r));
          run.child.kill('SIGTERM');
          await exited;
        }
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test('an opt-out is refused, saying who may exempt a pod and how', async () => {
      const res = await create(ENFORCED, agentPod('opted-out', { labels: { 'agent-proxy.akto.io/inject': 'false' } }));
      expect(res.status).toBe(403);
      expect(messageOf(res.text)).toMatch(/admission webhook "enforced\.inject\.agent-proxy\.akto\.io" denied the request: .*namespace "agents-enforced" is enforced.*cannot opt out.*Only the platform team \(#platform\) can exempt a pod, by service account or pod labels in the chart values enforcement\.exemptions; a pod cannot exempt itself\./);
      // The exemptions in force are not disclosed to the pod's author.
      expect(messageOf(res.text)).not.toMatch(/batch-runner|team=platform/);
      expect((await cp.api.request('GET', `/api/v1/namespaces/${ENFORCED}/pods/opted-out`)).status).toBe(404);
    });

    test('exempt pods (service account, labels) may opt out, with a warning', async () => {
      const bySa = await create(ENFORCED, agentPod('exempt-sa', { sa: 'batch-runner', labels: { 'agent-proxy.akto.io/inject': 'false' } }));
      expect(bySa.status).toBe(201);
      expect(sidecarOf(bySa.body)).toBeUndefined();
      expect(bySa.warnings.join(' ')).toContain(`exempt from enforcement by service account ${ENFORCED}/batch-runner`);
      const byLabel = await create(ENFORCED, agentPod('exempt-label', { labels: { 'agent-proxy.akto.io/inject': 'false', team: 'platform' } }));
      expect(byLabel.status).toBe(201);
      expect(sidecarOf(byLabel.body)).toBeUndefined();
      // The same service account name in another namespace is not exempt.
      const other = await create(ENFORCED, agentPod('not-exempt', { sa: 'batch', labels: { 'agent-proxy.akto.io/inject': 'false', team: 'platforms' } }));
      expect(other.status).toBe(403);
    });

    test('an opt-out in an enabled namespace is admitted with a warning, an Event on the owner (counted, not on dry runs) and a log line', async () => {
      // As a ReplicaSet creates them: generateName, no uid yet; the Event goes on the owner, which has one.
      const owner = { name: 'agent-5d8f', uid: '6c1f9a8e-1111-4c4c-8d8d-000000000001' };
      const pod = () => {
        const p = agentPod('', { owner, labels: { 'agent-proxy.akto.io/inject': 'false' } });
        const { name: _unnamed, ...metadata } = p.metadata;
        return { ...p, metadata: { ...metadata, generateName: `${owner.name}-` } };
      };
      const res = await create(ENABLED, pod());
      expect(res.status).toBe(201);
      expect(sidecarOf(res.body)).toBeUndefined();
      expect(res.warnings.join(' ')).toContain('runs without the guardrail proxy');
      type Ev = { involvedObject: { kind: string; name: string; uid: string }; reason: string; message: string; count: number; source: { component: string }; reportingInstance: string };
      const events = async (): Promise<Ev[]> => (await cp.api.must<{ items: Ev[] }>('GET', `/api/v1/namespaces/${ENABLED}/events`)).items.filter((e) => e.reason === 'InjectionOptOut');
      const [first] = await eventually(async () => {
        const e = await events();
        return e.length === 1 ? e : undefined;
      }, 20_000, 'the opt-out Event');
      expect(first).toMatchObject({ involvedObject: { kind: 'ReplicaSet', name: owner.name, uid: owner.uid }, count: 1, source: { component: 'akto-agent-proxy-webhook' }, reportingInstance: 'webhook-0' });
      expect(first.message).toBe('pod agent-5d8f-*: pod label agent-proxy.akto.io/inject="false": this pod runs without the guardrail proxy');
      expect((await create(ENABLED, pod(), true)).status).toBe(201);
      expect((await create(ENABLED, pod())).status).toBe(201);
      await eventually(async () => (await events())[0]?.count === 2, 20_000, 'the Event to count the second opt-out');
      expect(await events()).toHaveLength(1);
      expect(readFileSync(webhook!.logFile, 'utf8')).toMatch(/"result":"skipped","reason":"opted-out","pod":"agent-5d8f-\*","namespace":"agents-enabled"/);
    });
  });

  describe('with the webhook stopped (failurePolicy Ignore), then removed: the policy alone', () => {
    beforeAll(async () => {
      helm(tools.helm!, cp.kubeconfig, ['upgrade', 'akto', CHART, '-n', RELEASE_NS, ...installArgs(['--set', 'webhook.failurePolicy=Ignore'])]);
      await webhook!.stop();
      webhook = undefined;
      // Until the API server sees Ignore, pods are refused by the failing call instead.
      await eventually(async () => (await create(ENFORCED, agentPod('exempt-probe', { sa: 'batch-runner' }), true)).status === 201, 30_000, 'failurePolicy Ignore');
    });

    const refusedByPolicy = async (name: string, pod: object, why: RegExp) => {
      const res = await create(ENFORCED, pod, true);
      expect(`${name}: ${res.status}`).toBe(`${name}: 403`);
      expect(messageOf(res.text)).toMatch(/ValidatingAdmissionPolicy 'akto-akto-agent-proxy-enforced' with binding 'akto-akto-agent-proxy-enforced' denied request: agent-proxy\.akto\.io policy: /);
      expect(messageOf(res.text)).toMatch(why);
    };

    test('a bare agent pod is refused; exempt pods and a pod carrying the sidecar are admitted', async () => {
      await refusedByPolicy('bare', agentPod('bare'), /exactly one akto-proxy sidecar, injected by the akto-agent-proxy webhook \(is it running\?\)\. Only the platform team \(#platform\) can exempt a pod/);
      expect((await create(ENFORCED, agentPod('exempt-sa-2', { sa: 'batch-runner' }))).status).toBe(201);
      expect((await create(ENFORCED, agentPod('exempt-label-2', { labels: { team: 'platform' } }))).status).toBe(201);
      const carried = await create(ENFORCED, resubmit(guarded, 'carried'));
      expect(carried.status).toBe(201);
      expect(sidecarOf(carried.body)?.image).toBe(SIDECAR_IMAGE);
    });

    test('a pod that forges the sidecar or points around it is refused, each for its reason', async () => {
      const withSidecar = (name: string, change: (sidecar: Container, app: Container, pod: Pod) => void): Pod => resubmit(guarded, name, (p) => {
        change(sidecarOf(p)!, p.spec.containers.find((c) => c.name === 'agent')!, p);
      });
      const cases: Array<[string, Pod, RegExp]> = [
        ['own image', withSidecar('f1', (s) => { s.image = 'busybox:1.36'; }), /must run the proxy of image registry\.example\/akto-agent-proxy unmodified/],
        ['look-alike repository', withSidecar('f2', (s) => { s.image = 'registry.example/akto-agent-proxy-evil:0.1.0'; }), /unmodified/],
        ['other program', withSidecar('f3', (s) => { s.command = ['node', '-e', 'require("http").createServer().listen(8080)']; }), /unmodified/],
        ['extra args', withSidecar('f4', (s) => { s.args = ['--require', '/tmp/x.js']; }), /unmodified/],
        ['code mounted over the image', withSidecar('f5', (s) => { (s.volumeMounts as object[]).push({ name: 'akto-proxy-tmp', mountPath: '/app/dist' }); }), /unmodified/],
        ['NODE_OPTIONS', withSidecar('f6', (s) => { s.env!.push({ name: 'NODE_OPTIONS', value: '--require /tmp/x.js' }); }), /only carry the variables the webhook sets/],
        ['guardrails off', withSidecar('f7', (s) => { s.env!.push({ name: 'POLICY_PACK', value: 'off' }); }), /no policy pack of off, monitor/],
        ['traces elsewhere', withSidecar('f8', (s) => { envOf(s, 'AKTO_API_BASE_URL')!.valueFrom = { secretKeyRef: { name: 'mine', key: 'url' } }; }), /Akto from Secret akto-agent-proxy/],
        ['URL straight to the endpoint', withSidecar('f9', (_s, app) => { envOf(app, 'OPENAI_BASE_URL')!.value = UPSTREAM; }), /must point at a listener of the akto-proxy sidecar/],
        ['URL at another local port', withSidecar('f10', (_s, app) => { envOf(app, 'OPENAI_BASE_URL')!.value = 'http://127.0.0.1:9999'; }), /must point at a listener/],
        ['URL by $(VAR) indirection', withSidecar('f11', (_s, app) => {
          app.env!.unshift({ name: 'REAL', value: UPSTREAM });
          envOf(app, 'OPENAI_BASE_URL')!.value = '$(REAL)';
        }), /must point at a listener/],
        ['annotation naming another URL variable', withSidecar('f12', (_s, app, p) => {
          p.metadata.annotations = { ...p.metadata.annotations, 'agent-proxy.akto.io/env-vars': 'MY_LLM_URL' };
          app.env!.push({ name: 'MY_LLM_URL', value: UPSTREAM });
        }), /\(AI_AGENT_INFERENCE_URL, OPENAI_BASE_URL, HF_INFERENCE_ENDPOINT, MY_LLM_URL\) must point at a listener/],
        ['second container calling out', withSidecar('f13', (_s, _app, p) => {
          p.spec.containers.push({ name: 'helper', image: 'helper:1', env: [{ name: 'HF_INFERENCE_ENDPOINT', value: UPSTREAM }] });
        }), /must point at a listener/],
        ['hostNetwork', withSidecar('f14', (_s, _app, p) => { p.spec.hostNetwork = true; }), /hostNetwork pods cannot be guarded/],
        ['an inbound listener forwarding off the pod', withSidecar('f16', (s) => {
          s.env!.push({ name: 'INBOUND_PORT', value: '15090' }, { name: 'INBOUND_APP_URL', value: UPSTREAM });
        }), /forwards only to the app's own port on 127\.0\.0\.1/],
        ['URL at the inbound listener', withSidecar('f17', (s, app) => {
          s.env!.push({ name: 'INBOUND_PORT', value: '15090' }, { name: 'INBOUND_APP_URL', value: 'http://127.0.0.1:8000' });
          envOf(app, 'OPENAI_BASE_URL')!.value = 'http://127.0.0.1:15090';
        }), /must point at a listener of the akto-proxy sidecar/],
        // Without restartPolicy Always (and the probes only sidecars may have) it blocks the pod's start forever
        // (or exits), never serving the app: not a sidecar. (Two containers of one name are refused by the API server.)
        ['blocking init container named akto-proxy', withSidecar('f15', (s) => {
          for (const k of ['restartPolicy', 'startupProbe', 'readinessProbe', 'livenessProbe']) delete s[k];
        }), /must be a native sidecar/],
      ];
      for (const [name, pod, why] of cases) await refusedByPolicy(name, pod, why);
    });

    test('custody is required: the agent may not hold the credential in any form', async () => {
      const withApp = (name: string, change: (app: Container, pod: Pod) => void): Pod => resubmit(guarded, name, (p) => change(p.spec.containers.find((c) => c.name === 'agent')!, p));
      const cases: Array<[string, Pod, RegExp]> = [
        ['literal token', withApp('c1', (app) => { envOf(app, 'HF_TOKEN')!.value = 'hf_real'; }), /credential custody is required here: app containers hold only the placeholder/],
        ['token from another Secret', withApp('c2', (app) => { app.env!.push({ name: 'OPENAI_API_KEY', valueFrom: { secretKeyRef: { name: 'other', key: 'k' } } }); }), /hold only the placeholder/],
        ['the credential under another name', withApp('c3', (app) => { app.env!.push({ name: 'MY_KEY', valueFrom: { secretKeyRef: { name: 'hf-token', key: 'token' } } }); }), /never read the upstream credential's Secret key/],
        ['envFrom that could supply a token', withApp('c4', (app) => { app.envFrom = [{ configMapRef: { name: 'agent-config' } }]; app.env = app.env!.filter((e) => e.name !== 'HF_TOKEN'); }), /an envFrom source could supply must be set explicitly/],
        ['the credential Secret via envFrom', withApp('c5', (app) => {
          app.envFrom = [{ secretRef: { name: 'hf-token' }, prefix: 'X_' }];
        }), /an envFrom source could supply must be set explicitly/],
        ['the credential Secret as a file', withApp('c6', (app, p) => {
          p.spec.volumes!.push({ name: 'creds', secret: { secretName: 'hf-token' } });
          app.volumeMounts = [{ name: 'creds', mountPath: '/creds' }];
        }), /no volume may carry an upstream credential's Secret/],
        ['a shared process namespace', withApp('c8', (_app, p) => { p.spec.shareProcessNamespace = true; }), /shared process namespace would let app containers read the sidecar's environment/],
        ['a second container with a token', withApp('c7', (_app, p) => { p.spec.containers.push({ name: 'uploader', image: 'u:1', env: [{ name: 'HUGGING_FACE_HUB_TOKEN', value: 'hf_x' }] }); }), /hold only the placeholder/],
      ];
      for (const [name, pod, why] of cases) await refusedByPolicy(name, pod, why);
      // The placeholder everywhere, explicit entries shadowing envFrom: admitted.
      const ok = withApp('c-ok', (app) => {
        app.envFrom = [{ configMapRef: { name: 'agent-config' } }];
        for (const v of ['HUGGING_FACE_HUB_TOKEN', 'HF_API_TOKEN', 'HF_AUTHORIZATION', 'OPENAI_API_KEY']) app.env!.unshift({ name: v, value: PLACEHOLDER });
      });
      expect((await create(ENFORCED, ok, true)).status).toBe(201);
    });

    test('a running pod keeps its sidecar: no image swap, no ephemeral container; other updates pass, also for pods from before enforcement', async () => {
      const stored = await cp.api.must<Pod>('GET', `/api/v1/namespaces/${ENFORCED}/pods/agent-1`);
      const field = stored.spec.initContainers?.some((c) => c.name === 'akto-proxy') ? 'initContainers' : 'containers';
      const patch = (p: string, body: object) => cp.api.request('PATCH', `/api/v1/namespaces/${ENFORCED}/pods/${p}`, body, 'application/strategic-merge-patch+json');
      const swap = await patch('agent-1', { spec: { [field]: [{ name: 'akto-proxy', image: 'busybox:1.36' }] } });
      expect(swap.status).toBe(403);
      expect(messageOf(swap.text)).toContain("the akto-proxy container's image cannot be changed");
      const debug = await patch('agent-1/ephemeralcontainers', { spec: { ephemeralContainers: [{ name: 'debug', image: 'busybox:1.36', command: ['sh'], targetContainerName: 'agent' }] } });
      expect(debug.status).toBe(403);
      expect(messageOf(debug.text)).toContain('ephemeral containers (kubectl debug) are refused');
      expect((await patch('agent-1', { metadata: { labels: { reviewed: 'yes' } } })).status).toBe(200);
      // Exempt pods may be debugged.
      expect((await patch('exempt-label-2/ephemeralcontainers', { spec: { ephemeralContainers: [{ name: 'debug', image: 'busybox:1.36', command: ['sh'] }] } })).status).toBe(200);

      // A namespace enforced after its pods were created: they can still be labelled, finalized, deleted.
      await cp.api.createNamespace('later');
      expect((await create('later', agentPod('old'))).status).toBe(201);
      await cp.api.must('PATCH', '/api/v1/namespaces/later', { metadata: { labels: { 'agent-proxy.akto.io/injection': 'enforced' } } }, 'application/merge-patch+json');
      await eventually(async () => (await create('later', agentPod('new'), true)).status === 403, 30_000, 'the policy to cover the relabelled namespace');
      expect((await cp.api.request('PATCH', '/api/v1/namespaces/later/pods/old', { metadata: { finalizers: ['example.com/hold'] } }, 'application/strategic-merge-patch+json')).status).toBe(200);
      expect((await cp.api.request('PATCH', '/api/v1/namespaces/later/pods/old', [{ op: 'remove', path: '/metadata/finalizers' }], 'application/json-patch+json')).status).toBe(200);
      expect((await cp.api.request('DELETE', '/api/v1/namespaces/later/pods/old')).status).toBe(200);
    });

    test('with the webhook configuration deleted altogether, the policy still refuses', async () => {
      await cp.api.must('DELETE', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/akto-akto-agent-proxy-webhook');
      await refusedByPolicy('bare after removal', agentPod('bare-2'), /exactly one akto-proxy sidecar/);
      expect((await create(ENFORCED, resubmit(guarded, 'carried-2'), true)).status).toBe(201);
      // Namespaces that are merely enabled are not affected by the policy.
      expect((await create(ENABLED, agentPod('plain-enabled'), true)).status).toBe(201);
    });
  });
});
