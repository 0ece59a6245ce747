// helm test: dry-run creates an opted-in pod through the API server and checks that the webhook injected the
// akto-proxy sidecar and rewrote the inference URL. Dry run: nothing is stored, nothing runs.
// Runs with the chart's own image (node, no other dependency). Env: TEST_NAMESPACE, URL_ENV_VAR, and the in-cluster
// service account (SA_DIR and KUBE_API_URL override it, for running the same check from outside a cluster).
'use strict';
const fs = require('node:fs');
const https = require('node:https');

const saDir = process.env.SA_DIR || '/var/run/secrets/kubernetes.io/serviceaccount';
const apiUrl = process.env.KUBE_API_URL ||
  `https://${process.env.KUBERNETES_SERVICE_HOST}:${process.env.KUBERNETES_SERVICE_PORT}`;
const namespace = process.env.TEST_NAMESPACE;
const envVar = process.env.URL_ENV_VAR || 'AI_AGENT_INFERENCE_URL';
const upstream = 'http://inference.invalid:8080/v1';

function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}

function createPodDryRun(pod) {
  const url = new URL(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods?dryRun=All`, apiUrl);
  const body = JSON.stringify(pod);
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method: 'POST',
      ca: fs.readFileSync(`${saDir}/ca.crt`),
      headers: {
        authorization: `Bearer ${fs.readFileSync(`${saDir}/token`, 'utf8').trim()}`,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      },
      timeout: 30000,
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, warnings: res.headers.warning, text }));
    });
    req.on('timeout', () => req.destroy(new Error('API server did not answer within 30 s')));
    req.on('error', reject);
    req.end(body);
  });
}

async function main() {
  if (!namespace) fail('TEST_NAMESPACE is not set');
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'injection-check-', namespace },
    spec: {
      // Restricted-compliant agent: the test namespace enforces Pod Security "restricted", which is evaluated AFTER
      // the webhook, so this also proves the injected sidecar passes it.
      securityContext: { runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [{
        name: 'agent',
        image: 'agent:test',
        env: [{ name: envVar, value: upstream }],
        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
      }],
    },
  };
  const res = await createPodDryRun(pod);
  if (res.status !== 201 && res.status !== 200) fail(`dry-run pod create answered ${res.status}: ${res.text}`);
  const stored = JSON.parse(res.text);
  const sidecars = [...(stored.spec.initContainers || []), ...(stored.spec.containers || [])]
    .filter((c) => c.name === 'akto-proxy');
  if (sidecars.length !== 1) fail(`expected one akto-proxy container, found ${sidecars.length}${res.warnings ? ` (warnings: ${res.warnings})` : ''}`);
  const agent = stored.spec.containers.find((c) => c.name === 'agent');
  const rewritten = (agent.env || []).find((e) => e.name === envVar);
  if (!rewritten || !/^http:\/\/127\.0\.0\.1:\d+/.test(rewritten.value || '')) {
    fail(`${envVar} was not rewritten to the sidecar: ${JSON.stringify(rewritten)}`);
  }
  const sidecarEnv = JSON.stringify(sidecars[0].env || []);
  if (!sidecarEnv.includes(upstream)) fail('the sidecar was not handed the original URL');
  const native = (stored.spec.initContainers || []).some((c) => c.name === 'akto-proxy');
  console.log(`PASS: akto-proxy injected (${native ? 'native' : 'classic'} sidecar), ${envVar}=${rewritten.value}`);
}

main().catch((err) => fail(err.message));
