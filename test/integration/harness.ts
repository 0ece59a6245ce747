/**
 * A real control plane for integration tests: etcd + kube-apiserver on loopback with per-run certificates and a
 * static admin token (no kubelet, no controllers: pods are admitted and stored, never run). Binaries come from
 * test/integration/k8s-tools.sh (its env file in the cache) or KUBE_APISERVER_BIN / ETCD_BIN / HELM_BIN.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { freePort } from '../support/ports';
import os from 'node:os';
import path from 'node:path';
import forge from 'node-forge';
import { parse as parseYaml, parseAllDocuments } from 'yaml';

export interface K8sTools {
  apiserver?: string;
  etcd?: string;
  helm?: string;
}

export function toolsCacheDir(): string {
  const base = process.env.AKTO_K8S_TOOLS_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'akto-agent-proxy');
  return base;
}

/** Binaries from env overrides, else from the env file k8s-tools.sh wrote. Missing or non-executable = undefined. */
export function findTools(): K8sTools {
  const fromFile: Record<string, string> = {};
  const envFile = path.join(toolsCacheDir(), 'k8s-tools.env');
  if (existsSync(envFile)) {
    for (const line of readFileSync(envFile, 'utf8').split('\n')) {
      const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
      if (m) fromFile[m[1]] = m[2];
    }
  }
  const pick = (name: string): string | undefined => {
    const p = process.env[name] || fromFile[name];
    return p && existsSync(p) ? p : undefined;
  };
  return { apiserver: pick('KUBE_APISERVER_BIN'), etcd: pick('ETCD_BIN'), helm: pick('HELM_BIN') };
}

/** `describe`, or `describe.skip` with ONE loud line saying what is missing and how to get it. */
export function describeIf(ok: boolean, missing: string): jest.Describe {
  if (ok) return describe;
  console.warn(`!!! SKIPPED: ${missing} not found — run \`bash test/integration/k8s-tools.sh\` (needs Go for kube-apiserver/etcd) !!!`);
  return describe.skip;
}

export { freePort };

/** What a suite running the chart and the built webhook on a real API server lacks; empty when nothing. */
export function missingForWebhookSuites(tools: K8sTools): string {
  return [!tools.apiserver && 'kube-apiserver', !tools.etcd && 'etcd', !tools.helm && 'helm',
    !existsSync(DIST_WEBHOOK) && 'dist/webhook/main.js (npm run build)'].filter(Boolean).join(', ');
}

// ---------------------------------------------------------------- certificates

export interface Pem {
  cert: string;
  key: string;
}

function newKeyPair(): { forgeKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey; keyPem: string } {
  // Native keygen: forge's pure-JS RSA generation takes seconds.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const forgeKey = forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey;
  return { forgeKey, publicKey: forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e), keyPem: privateKey };
}

/** A test CA that signs serving and client certificates (valid for two days). */
export class TestCa {
  readonly cert: string;
  private readonly caCert: forge.pki.Certificate;
  private readonly caKey: forge.pki.rsa.PrivateKey;

  constructor(commonName = 'akto-test-ca') {
    const kp = newKeyPair();
    const c = forge.pki.createCertificate();
    c.publicKey = kp.publicKey;
    c.serialNumber = '01' + randomBytes(8).toString('hex');
    c.validity.notBefore = new Date(Date.now() - 60_000);
    c.validity.notAfter = new Date(Date.now() + 2 * 86_400_000);
    const subject = [{ name: 'commonName', value: commonName }];
    c.setSubject(subject);
    c.setIssuer(subject);
    c.setExtensions([
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ]);
    c.sign(kp.forgeKey, forge.md.sha256.create());
    this.caCert = c;
    this.caKey = kp.forgeKey;
    this.cert = forge.pki.certificateToPem(c);
  }

  /** A serving certificate for loopback (IP SAN 127.0.0.1: Go's TLS client checks IP SANs), plus DNS names. */
  serving(commonName: string, dnsNames: string[] = ['localhost']): Pem {
    return this.issue(commonName, [
      { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, ...dnsNames.map((value) => ({ type: 2, value }))] },
      { name: 'extKeyUsage', serverAuth: true },
    ]);
  }

  private issue(commonName: string, extensions: object[]): Pem {
    const kp = newKeyPair();
    const c = forge.pki.createCertificate();
    c.publicKey = kp.publicKey;
    c.serialNumber = '02' + randomBytes(8).toString('hex');
    c.validity.notBefore = new Date(Date.now() - 60_000);
    c.validity.notAfter = new Date(Date.now() + 2 * 86_400_000);
    c.setSubject([{ name: 'commonName', value: commonName }]);
    c.setIssuer(this.caCert.subject.attributes);
    c.setExtensions([{ name: 'basicConstraints', cA: false }, { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true }, ...extensions]);
    c.sign(this.caKey, forge.md.sha256.create());
    return { cert: forge.pki.certificateToPem(c), key: kp.keyPem };
  }
}

// ---------------------------------------------------------------- processes

interface Managed {
  name: string;
  child: ChildProcess;
  logFile: string;
  exited: Promise<void>;
}

function startProcess(name: string, bin: string, args: string[], dir: string, env: NodeJS.ProcessEnv = process.env): Managed {
  const logFile = path.join(dir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(bin, args, { stdio: ['ignore', fd, fd], env });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { name, child, logFile, exited };
}

async function stopProcess(p: Managed, graceMs = 5000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(timer);
}

function logTail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function hasDefaultRoute(): boolean {
  try {
    return readFileSync('/proc/net/route', 'utf8').split('\n').slice(1).some((l) => l.split(/\s+/)[1] === '00000000');
  } catch {
    return true;
  }
}

// ---------------------------------------------------------------- API client

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  body: T;
  text: string;
  warnings: string[];
}

export class KubeApi {
  constructor(readonly url: string, readonly ca: string, private readonly token: string, private readonly extraHeaders: Record<string, string> = {}) {}

  /** The same client acting as another user (admin impersonation), e.g. a service account, to test its RBAC. */
  as(user: string): KubeApi {
    return new KubeApi(this.url, this.ca, this.token, { 'impersonate-user': user });
  }

  request<T = Record<string, unknown>>(method: string, apiPath: string, body?: unknown, contentType = 'application/json'): Promise<ApiResponse<T>> {
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = https.request(new URL(apiPath, this.url), {
        method,
        ca: this.ca,
        headers: {
          authorization: `Bearer ${this.token}`,
          accept: 'application/json',
          ...this.extraHeaders,
          ...(data === undefined ? {} : { 'content-type': contentType, 'content-length': Buffer.byteLength(data) }),
        },
        timeout: 60_000,
      }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          let parsed: unknown = {};
          try {
            parsed = text ? JSON.parse(text) : {};
          } catch {
            parsed = {};
          }
          const w = res.headers.warning;
          const warnings = (Array.isArray(w) ? w : w ? [w] : []).flatMap((s) => s.split(/,(?=\s*\d{3} )/)).map((s) => s.trim());
          resolve({ status: res.statusCode ?? 0, body: parsed as T, text, warnings });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${apiPath}: no answer in 60 s`)));
      req.on('error', reject);
      req.end(data);
    });
  }

  /** Like request, but throws with the server's message on a status outside 2xx. */
  async must<T = Record<string, unknown>>(method: string, apiPath: string, body?: unknown, contentType?: string): Promise<T> {
    const res = await this.request<T>(method, apiPath, body, contentType);
    if (res.status < 200 || res.status > 299) throw new Error(`${method} ${apiPath} -> ${res.status}: ${res.text}`);
    return res.body;
  }

  async createNamespace(name: string, labels: Record<string, string> = {}): Promise<void> {
    await this.must('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
  }

  createPod(namespace: string, pod: object, dryRun = false): Promise<ApiResponse<Pod>> {
    return this.request<Pod>('POST', `/api/v1/namespaces/${namespace}/pods${dryRun ? '?dryRun=All' : ''}`, pod);
  }
}

export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: Record<string, Record<string, unknown>> }>;
  restartPolicy?: string;
  [k: string]: unknown;
}

export interface Pod {
  metadata: { name: string; namespace: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { containers: Container[]; initContainers?: Container[]; volumes?: Array<Record<string, unknown>>; [k: string]: unknown };
}

/** Poll fn every intervalMs until it returns a truthy value (or throw the last error / a timeout). */
export async function eventually<T>(fn: () => Promise<T | undefined | false>, timeoutMs = 20_000, what = 'condition', intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// ---------------------------------------------------------------- control plane

export class ControlPlane {
  readonly api: KubeApi;
  readonly kubeconfig: string;

  private constructor(
    readonly dir: string,
    readonly url: string,
    readonly ca: TestCa,
    readonly token: string,
    private readonly procs: Managed[],
  ) {
    this.api = new KubeApi(url, ca.cert, token);
    this.kubeconfig = this.writeKubeconfig('kubeconfig', token);
  }

  /** A kubeconfig file for this server with the given bearer token (e.g. a service account's), optionally at another URL. */
  writeKubeconfig(fileName: string, token: string, server = this.url): string {
    const file = path.join(this.dir, fileName);
    writeFileSync(file, [
      'apiVersion: v1', 'kind: Config', 'current-context: test',
      'clusters:', '- name: test', '  cluster:', `    server: ${server}`, `    certificate-authority-data: ${Buffer.from(this.ca.cert).toString('base64')}`,
      'users:', '- name: user', '  user:', `    token: ${token}`,
      'contexts:', '- name: test', '  context: {cluster: test, user: user}', '',
    ].join('\n'), { mode: 0o600 });
    return file;
  }

  /** A short-lived token of a service account (TokenRequest API). */
  async serviceAccountToken(namespace: string, name: string): Promise<string> {
    const res = await this.api.must<{ status: { token: string } }>('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } });
    return res.status.token;
  }

  static async start(tools: Required<Pick<K8sTools, 'apiserver' | 'etcd'>>): Promise<ControlPlane> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'akto-k8s-'));
    const procs: Managed[] = [];
    try {
      const ca = new TestCa('akto-test-apiserver-ca');
      const serving = ca.serving('kube-apiserver', ['localhost', 'kubernetes', 'kubernetes.default.svc']);
      const sa = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
      const token = randomBytes(24).toString('hex');
      const f = (name: string, text: string): string => {
        const p = path.join(dir, name);
        writeFileSync(p, text, { mode: 0o600 });
        return p;
      };
      f('ca.crt', ca.cert);
      f('apiserver.crt', serving.cert);
      f('apiserver.key', serving.key);
      f('sa.key', sa.privateKey);
      f('sa.pub', sa.publicKey);
      f('tokens.csv', `${token},admin,admin-uid,"system:masters"\n`);
      // Audit pod creates: a webhook that failed open leaves its mark there (failed-open.mutation.webhook...).
      f('audit-policy.yaml', [
        'apiVersion: audit.k8s.io/v1', 'kind: Policy', 'omitStages: [RequestReceived]', 'rules:',
        '- level: Metadata', '  verbs: [create]', '  resources: [{group: "", resources: [pods]}]', '- level: None', '',
      ].join('\n'));

      const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
      const etcd = startProcess('etcd', tools.etcd, [
        '--name=t', `--data-dir=${path.join(dir, 'etcd')}`,
        `--listen-client-urls=http://127.0.0.1:${etcdClient}`, `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`, `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=t=http://127.0.0.1:${etcdPeer}`, '--unsafe-no-fsync=true', '--log-level=warn',
      ], dir);
      procs.push(etcd);

      const url = `https://127.0.0.1:${apiPort}`;
      const apiserver = startProcess('kube-apiserver', tools.apiserver, [
        `--etcd-servers=http://127.0.0.1:${etcdClient}`,
        '--bind-address=127.0.0.1', `--secure-port=${apiPort}`,
        ...(hasDefaultRoute() ? [] : ['--advertise-address=127.0.0.1']),
        `--cert-dir=${dir}`, `--tls-cert-file=${path.join(dir, 'apiserver.crt')}`, `--tls-private-key-file=${path.join(dir, 'apiserver.key')}`,
        `--client-ca-file=${path.join(dir, 'ca.crt')}`, `--token-auth-file=${path.join(dir, 'tokens.csv')}`,
        `--service-account-issuer=${url}`, `--service-account-key-file=${path.join(dir, 'sa.pub')}`,
        `--service-account-signing-key-file=${path.join(dir, 'sa.key')}`,
        '--service-cluster-ip-range=10.0.0.0/24', '--authorization-mode=RBAC',
        '--disable-admission-plugins=ServiceAccount', '--allow-privileged=true', '--v=0',
        `--audit-policy-file=${path.join(dir, 'audit-policy.yaml')}`, `--audit-log-path=${path.join(dir, 'audit.log')}`,
      ], dir, { ...process.env, NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost' });
      procs.push(apiserver);

      const cp = new ControlPlane(dir, url, ca, token, procs);
      await eventually(async () => {
        if (apiserver.child.exitCode !== null) throw new Error(`kube-apiserver exited:\n${logTail(apiserver.logFile)}`);
        if (etcd.child.exitCode !== null) throw new Error(`etcd exited:\n${logTail(etcd.logFile)}`);
        const r = await cp.api.request('GET', '/readyz');
        return r.status === 200;
      }, 90_000, 'kube-apiserver /readyz').catch((err: Error) => {
        throw new Error(`${err.message}\n--- kube-apiserver log ---\n${logTail(apiserver.logFile)}`);
      });
      // The bootstrap controller creates the default namespace shortly after readiness.
      await eventually(async () => (await cp.api.request('GET', '/api/v1/namespaces/default')).status === 200, 30_000, 'namespace default');
      return cp;
    } catch (err) {
      for (const p of procs.reverse()) await stopProcess(p);
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Audit events (level Metadata) of pod creates so far. */
  auditEvents(): Array<{ objectRef?: { namespace?: string; name?: string }; annotations?: Record<string, string>; responseStatus?: { code?: number } }> {
    const file = path.join(this.dir, 'audit.log');
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  }

  /** The server's version, e.g. { major: '1', minor: '33', gitVersion: 'v1.33.13' }. */
  async version(): Promise<{ major: string; minor: string; gitVersion: string }> {
    return this.api.must('GET', '/version');
  }

  async stop(): Promise<void> {
    for (const p of [...this.procs].reverse()) await stopProcess(p);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- playing kubelet for one container

const REPO_ROOT = path.resolve(__dirname, '../..');

type VolumeSpec = { name: string; configMap?: { name: string; items?: Array<{ key: string; path: string }> }; emptyDir?: object };

/** What kubelet would do for one container, minus the image: resolve env, map volumes, run the command. */
export async function runLikeKubelet(cp: ControlPlane, pod: Pod, c: Container, dir: string): Promise<{ child: ChildProcess; logFile: string; env: Record<string, string> }> {
  const ns = pod.metadata.namespace;
  const mounts: Array<[string, string]> = [];
  for (const m of (c.volumeMounts ?? []) as Array<{ name: string; mountPath: string }>) {
    const vol = ((pod.spec.volumes ?? []) as VolumeSpec[]).find((v) => v.name === m.name);
    const local = path.join(dir, 'volumes', m.name);
    mkdirSync(local, { recursive: true });
    if (vol?.configMap) {
      const cm = await cp.api.must<{ data: Record<string, string> }>('GET', `/api/v1/namespaces/${ns}/configmaps/${vol.configMap.name}`);
      for (const item of vol.configMap.items ?? Object.keys(cm.data).map((key) => ({ key, path: key }))) writeFileSync(path.join(local, item.path), cm.data[item.key]);
    } else if (!vol?.emptyDir) {
      throw new Error(`volume ${m.name}: only configMap and emptyDir are emulated`);
    }
    mounts.push([m.mountPath, local]);
  }
  const localPath = (v: string): string => {
    for (const [mountPath, local] of mounts) if (v === mountPath || v.startsWith(`${mountPath}/`)) return local + v.slice(mountPath.length);
    return v;
  };
  const fields: Record<string, string> = {
    'metadata.name': pod.metadata.name, 'metadata.namespace': ns, 'status.podIP': '127.0.0.1',
    'spec.serviceAccountName': String(pod.spec.serviceAccountName ?? 'default'),
  };
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) {
      env[e.name] = localPath(e.value);
      continue;
    }
    const from = e.valueFrom ?? {};
    const ref = (from.secretKeyRef ?? from.configMapKeyRef) as { name: string; key: string; optional?: boolean } | undefined;
    if (ref) {
      const kind = from.secretKeyRef ? 'secrets' : 'configmaps';
      const res = await cp.api.request<{ data?: Record<string, string> }>('GET', `/api/v1/namespaces/${ns}/${kind}/${ref.name}`);
      const raw = res.body.data?.[ref.key];
      if (raw === undefined) {
        if (ref.optional) continue;
        throw new Error(`env ${e.name}: ${kind}/${ref.name} key ${ref.key} is missing`);
      }
      env[e.name] = kind === 'secrets' ? Buffer.from(raw, 'base64').toString() : raw;
    } else if (from.fieldRef) {
      env[e.name] = fields[String(from.fieldRef.fieldPath)];
    }
  }
  const [cmd, ...args] = [...(c.command ?? []), ...(c.args ?? [])];
  const logFile = path.join(dir, `${c.name}.log`);
  const out = openSync(logFile, 'a');
  // The image's WORKDIR /app holds dist/ like the repo root does; only PATH and HOME come from the host.
  // ADMIN_HOST (and INBOUND_HOST): in a pod they face the kubelet (and the Services); on this host, tests listen on loopback only.
  const loopback = { ADMIN_HOST: '127.0.0.1', ...(env.INBOUND_PORT ? { INBOUND_HOST: '127.0.0.1' } : {}) };
  const child = spawn(cmd === 'node' ? process.execPath : cmd, args, { cwd: REPO_ROOT, env: { PATH: process.env.PATH, HOME: os.tmpdir(), ...env, ...loopback }, stdio: ['ignore', out, out] });
  closeSync(out);
  return { child, logFile, env };
}

/** Polls the container's startupProbe (httpGet on loopback) as kubelet would, until 200; fails when the process exits. */
export async function waitForStartupProbe(run: { child: ChildProcess; logFile: string }, c: Container): Promise<void> {
  const probe = (c.startupProbe as { httpGet: { path: string; port: number } }).httpGet;
  await eventually(async () => {
    if (run.child.exitCode !== null) throw new Error(`${c.name} exited ${run.child.exitCode}:\n${readFileSync(run.logFile, 'utf8').slice(-2000)}`);
    const status = await new Promise<number>((resolve) => {
      http.get({ host: '127.0.0.1', port: probe.port, path: probe.path, timeout: 1000 }, (r) => { r.resume(); resolve(r.statusCode ?? 0); }).on('error', () => resolve(0));
    });
    return status === 200;
  }, 30_000, `the ${c.name} startup probe`);
}


// ---------------------------------------------------------------- the webhook as a local process

export const DIST_WEBHOOK = path.resolve(__dirname, '../../dist/webhook/main.js');

export interface LocalWebhook {
  port: number;
  ca: TestCa;
  url: string;
  logFile: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Runs `node dist/webhook/main.js` (what the image runs) on 127.0.0.1 over TLS, with settings from env (they win
 * over WEBHOOK_SETTINGS_FILE). By default in the `provided` certificate mode with a serving certificate from `ca`;
 * with CERT_MODE=selfManaged in env the webhook makes its own (then /healthz is polled without verification).
 * Resolves once /healthz answers.
 */
export async function startLocalWebhook(env: Record<string, string>, ca = new TestCa('akto-test-webhook-ca'), port?: number): Promise<LocalWebhook> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'akto-webhook-'));
  const pem = ca.serving('webhook', ['localhost']);
  writeFileSync(path.join(dir, 'tls.crt'), pem.cert);
  writeFileSync(path.join(dir, 'tls.key'), pem.key, { mode: 0o600 });
  const listen = port ?? (await freePort());
  const ownCerts = env.CERT_MODE === 'selfManaged';
  const proc = startProcess('webhook', process.execPath, [DIST_WEBHOOK], dir, {
    ...process.env,
    CERT_MODE: 'provided',
    TLS_CERT_FILE: path.join(dir, 'tls.crt'),
    TLS_KEY_FILE: path.join(dir, 'tls.key'),
    WEBHOOK_PORT: String(listen),
    WEBHOOK_DRAIN_SECONDS: '0',
    LOG_LEVEL: 'warn',
    ...env,
  });
  const health = (): Promise<number> => new Promise((resolve) => {
    const req = https.get({ host: '127.0.0.1', port: listen, path: '/healthz', ...(ownCerts ? { rejectUnauthorized: false } : { ca: ca.cert }), timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
  });
  try {
    await eventually(async () => {
      if (proc.child.exitCode !== null) throw new Error(`webhook exited:\n${logTail(proc.logFile)}`);
      return (await health()) === 200;
    }, 30_000, 'webhook /healthz');
  } catch (err) {
    await stopProcess(proc);
    const log = logTail(proc.logFile);
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}\n--- webhook log ---\n${log}`);
  }
  return {
    port: listen,
    ca,
    url: `https://127.0.0.1:${listen}/mutate`,
    logFile: proc.logFile,
    child: proc.child,
    stop: async () => {
      await stopProcess(proc);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The webhook settings file the chart renders for these helm args, written to dir; returns its path. */
export function renderSettingsFile(helmBin: string, chart: string, namespace: string, args: string[], dir: string): string {
  const out = helm(helmBin, undefined, ['template', 'akto', chart, '-n', namespace, ...args, '--show-only', 'templates/configmap-settings.yaml']);
  const cm = parseYaml(out) as { data: Record<string, string> };
  const file = path.join(dir, `settings-${randomBytes(4).toString('hex')}.yaml`);
  writeFileSync(file, cm.data['settings.yaml']);
  return file;
}

/** Runs helm against the control plane; returns its output, throws with stderr on failure. */
export function helm(helmBin: string, kubeconfig: string | undefined, args: string[], timeoutMs = 120_000): string {
  const env = { ...process.env, HELM_CACHE_HOME: path.join(os.tmpdir(), 'akto-helm-cache'), HELM_CONFIG_HOME: path.join(os.tmpdir(), 'akto-helm-config'), HELM_DATA_HOME: path.join(os.tmpdir(), 'akto-helm-data') };
  const res = spawnSync(helmBin, [...(kubeconfig ? ['--kubeconfig', kubeconfig] : []), ...args], { env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024 });
  if (res.status !== 0) throw new Error(`helm ${args.join(' ')} failed (${res.status ?? res.signal}): ${res.stderr || res.error?.message}`);
  return res.stdout;
}

/** A rendered chart object (helm template output), loosely typed for assertions. */
export type ChartObject = { kind: string; metadata: { name: string; namespace?: string; annotations?: Record<string, string>; labels?: Record<string, string> }; [k: string]: any };

/** `helm template rel <chart> -n <ns> --skip-tests ...args`, parsed. */
export function renderChart(helmBin: string, chart: string, args: string[] = [], ns = 'akto-system'): ChartObject[] {
  const out = helm(helmBin, undefined, ['template', 'rel', chart, '-n', ns, '--skip-tests', ...args]);
  return parseAllDocuments(out).map((d) => d.toJSON()).filter(Boolean);
}

/** The error helm gives for these values; throws when rendering succeeds. */
export function renderChartError(helmBin: string, chart: string, args: string[]): string {
  try {
    renderChart(helmBin, chart, args);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error(`helm template ${args.join(' ')} unexpectedly succeeded`);
}
