/**
 * kubectl, helm and HTTP for the cluster scenario. It runs inside the run's network namespace (test/cluster/e2e.sh),
 * so pod and Service addresses are reachable directly; the binaries are on PATH and AKTO_E2E_RUN holds the admin
 * kubeconfig and the API server's audit log.
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { eventually, helm as helmIn } from '../integration/harness';

export const RUN = process.env.AKTO_E2E_RUN ?? '';
export const KUBECONFIG = path.join(RUN, 'admin.kubeconfig');
export const AUDIT_LOG = path.join(RUN, 'logs', 'audit.log');

export interface Ran {
  status: number;
  stdout: string;
  stderr: string;
}

function ran(res: ReturnType<typeof spawnSync>): Ran {
  return { status: res.status ?? -1, stdout: String(res.stdout ?? ''), stderr: String(res.stderr ?? res.error?.message ?? '') };
}

/** A command (inside the cluster's network namespace, like everything here); the result whatever the exit status. */
export function execTool(bin: string, args: string[], input?: string, timeoutMs = 60_000): Ran {
  return ran(spawnSync(bin, args, { input, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }));
}

/** kubectl with the admin kubeconfig; the result whatever the exit status. */
export function kubectlTry(args: string[], input?: string, timeoutMs = 60_000): Ran {
  return execTool('kubectl', ['--kubeconfig', KUBECONFIG, ...args], input, timeoutMs);
}

/** kubectl's stdout; throws with its stderr when it fails. */
export function kubectl(args: string[], input?: string, timeoutMs?: number): string {
  const r = kubectlTry(args, input, timeoutMs);
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** kubectl without blocking the event loop (e.g. while an HTTP call is in flight). */
export function kubectlAsync(args: string[]): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn('kubectl', ['--kubeconfig', KUBECONFIG, ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('close', (status) => resolve({ status: status ?? -1, stdout, stderr }));
  });
}

export function getJson<T = Obj>(args: string[]): T {
  return JSON.parse(kubectl(['get', ...args, '-o', 'json'])) as T;
}

/** kubectl apply of objects (JSON is YAML). */
export function apply(...objects: object[]): string {
  return kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
}

export function helm(args: string[], timeoutMs = 300_000): string {
  return helmIn('helm', KUBECONFIG, args, timeoutMs);
}

export async function poll<T>(what: string, timeoutMs: number, fn: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  return eventually(async () => fn(), timeoutMs, what, 1000);
}

/** One line per passed step, straight to stdout (jest keeps console output until the end). */
export function ok(what: string): void {
  writeSync(1, `ok  ${what}\n`);
}

export function note(what: string): void {
  writeSync(1, `    ${what}\n`);
}

export interface HttpResult {
  status: number;
  text: string;
  json: unknown;
}

/** HTTP, or HTTPS without verification (only to read a webhook pod's own /readyz, whatever certificate it serves). */
export function httpJson(method: string, url: string, body?: unknown, timeoutMs = 60_000, headers: Record<string, string> = {}): Promise<HttpResult> {
  const data = body === undefined ? undefined : JSON.stringify(body);
  const client = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const options = { method, timeout: timeoutMs, rejectUnauthorized: false, headers: { ...headers, ...(data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}) } };
    const req = client.request(url, options, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, text, json });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

// ------------------------------------------------------------------ objects

export type Obj = Record<string, any>;

export interface Container extends Obj {
  name: string;
  env?: Array<{ name: string; value?: string; valueFrom?: Obj }>;
}

export interface PodObj extends Obj {
  metadata: { name: string; namespace: string; annotations?: Record<string, string>; labels?: Record<string, string>; deletionTimestamp?: string };
  spec: { containers: Container[]; initContainers?: Container[]; [k: string]: any };
  status: { phase?: string; podIP?: string; conditions?: Array<{ type: string; status: string; lastTransitionTime?: string }>; initContainerStatuses?: Obj[]; containerStatuses?: Obj[] };
}

export function isReady(pod: PodObj): boolean {
  return pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** Running pods of an app label (not terminating). */
export function runningPods(namespace: string, selector: string): PodObj[] {
  return getJson<{ items: PodObj[] }>(['pods', '-n', namespace, '-l', selector]).items.filter((p) => !p.metadata.deletionTimestamp && p.status.phase === 'Running');
}

export function envOf(c: Container, name: string): string | undefined {
  return c.env?.find((e) => e.name === name)?.value;
}

// ------------------------------------------------------------------ diagnostics

/** What an operator would look at: pods, their description, recent logs of every container, events. */
export function diagnostics(namespaces: string[]): string {
  const out: string[] = [];
  const section = (title: string, r: Ran) => out.push(`----- ${title}\n${(r.stdout + r.stderr).trim()}`);
  section('nodes', kubectlTry(['get', 'nodes', '-o', 'wide']));
  for (const ns of namespaces) {
    section(`pods in ${ns}`, kubectlTry(['get', 'pods', '-n', ns, '-o', 'wide']));
    section(`describe pods in ${ns}`, kubectlTry(['describe', 'pods', '-n', ns]));
    section(`events in ${ns}`, kubectlTry(['get', 'events', '-n', ns, '--sort-by=.lastTimestamp']));
    const pods = kubectlTry(['get', 'pods', '-n', ns, '-o', 'name']).stdout.split('\n').filter(Boolean);
    for (const pod of pods) section(`logs ${ns}/${pod}`, kubectlTry(['logs', '-n', ns, pod, '--all-containers', '--prefix', '--tail=40']));
  }
  return out.join('\n');
}
