import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../test/support/ports';
import { ROOT, pinned, processTree, startProxyProcess, stopChild, waitUntilReady, type Child } from '../support';

/**
 * The systems `npm run bench:peers` puts between the load generator and the stub upstream. Each runs
 * pinned to the same CPUs, listens on loopback only and serves both stubs (0 ms and 50 ms service time)
 * through its own routing: a listener per upstream, a header, or a model name.
 */

export type ServiceMs = 0 | 50;

/** Where to send a chat request so it reaches the stub with the given service time. */
export interface Target {
  url: string;
  headers: Record<string, string>;
  model: string;
}

export interface RunningSystem {
  target(service: ServiceMs): Target;
  /** The processes whose CPU and memory count for this system. */
  pids(): number[];
  stop(): Promise<void>;
}

export interface Stubs {
  /** Base URLs (no path) of the stub upstreams. */
  url: Record<ServiceMs, string>;
  pids: number[];
  /** Akto ingestion stand-in, for the tracing variant. */
  aktoUrl: string;
  spoolDir: string;
}

export interface SystemSpec {
  name: string;
  /** What it is, for the table's legend. */
  describe: string;
  /** Peers to install first (bench/peers/install.sh names). */
  needs: string[];
  /** Runs a guardrail that must refuse an injection prompt: checked before measuring, so it is known to be on. */
  guarded?: boolean;
  start(stubs: Stubs, cpus: string, peerPaths: Record<string, string>): Promise<RunningSystem>;
}

const CHAT_PATH = '/v1/chat/completions';
const AUTH = { authorization: 'Bearer sk-bench-0000' };
const MODEL = 'tgi';

/** A regex the prompt does not match, so the guardrail runs and the request still passes. */
const PORTKEY_REGEX = '[Ii]gnore (all )?previous instructions';

function workDir(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `akto-peer-${name}-`));
}

/**
 * Spawns a server pinned to `cpus` in its work dir (its config files, its log), waits until `readyUrl`
 * answers at all, and removes the dir when stopped.
 */
async function startServer(name: string, argv: string[], opts: { cpus: string; env?: Record<string, string>; readyUrl: string; dir?: string; timeoutMs?: number }): Promise<Child> {
  const dir = opts.dir ?? workDir(name);
  const log = fs.openSync(path.join(dir, 'stderr.log'), 'w');
  const [cmd, ...args] = pinned(opts.cpus, argv);
  const proc = spawn(cmd, args, { cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir, ...opts.env }, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const tail = (): string => fs.readFileSync(path.join(dir, 'stderr.log'), 'utf8').slice(-1500);
  await waitUntilReady(proc, name, opts.readyUrl, { timeoutMs: opts.timeoutMs ?? 30000, detail: tail });
  return {
    proc,
    stop: async () => {
      await stopChild(proc);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function running(child: Child, target: (service: ServiceMs) => Target): RunningSystem {
  return { target, pids: () => processTree(child.proc.pid!), stop: () => child.stop() };
}

const direct: SystemSpec = {
  name: 'direct',
  describe: 'straight to the stub upstream (the floor; CPU and memory are the stub’s)',
  needs: [],
  start: async (stubs) => ({
    target: (service) => ({ url: stubs.url[service] + CHAT_PATH, headers: AUTH, model: MODEL }),
    pids: () => stubs.pids,
    stop: async () => undefined,
  }),
};

/** nginx as a plain reverse proxy: one worker, keep-alive upstreams, no buffering (streams pass through). */
const nginx: SystemSpec = {
  name: 'nginx',
  describe: 'nginx reverse proxy, 1 worker, upstream keep-alive, proxy_buffering off, access log on',
  needs: ['nginx'],
  start: async (stubs, cpus, peers) => {
    const dir = workDir('nginx');
    const ports = { 0: await freePort(), 50: await freePort() } as Record<ServiceMs, number>;
    const server = (service: ServiceMs): string => `
    upstream stub${service} { server ${new URL(stubs.url[service]).host}; keepalive 64; }
    server {
      listen 127.0.0.1:${ports[service]};
      location / {
        proxy_pass http://stub${service};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
        client_body_buffer_size 64k;
      }
    }`;
    fs.writeFileSync(
      path.join(dir, 'nginx.conf'),
      `daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 100000;
  ${server(0)}
  ${server(50)}
}
`,
    );
    const child = await startServer('nginx', [peers.nginx, '-e', `${dir}/error.log`, '-p', dir, '-c', `${dir}/nginx.conf`], { cpus, dir, readyUrl: `http://127.0.0.1:${ports[0]}/health` });
    return running(child, (service) => ({ url: `http://127.0.0.1:${ports[service]}${CHAT_PATH}`, headers: AUTH, model: MODEL }));
  },
};

/**
 * Bare http-proxy on Node with a keep-alive agent and nothing else (bench/peer-http-proxy.ts): what any Node
 * proxy pays for the hop before it reads a body. One process per stub, as it has no listener list.
 */
const nodeFloor: SystemSpec = {
  name: 'node-http-proxy',
  describe: 'bare http-proxy on Node, keep-alive agent, no body handling (the floor for any Node proxy)',
  needs: [],
  start: async (stubs, cpus) => {
    const fast = await startProxyProcess(stubs.url[0], {}, 'bench/peer-http-proxy.js', cpus);
    const slow = await startProxyProcess(stubs.url[50], {}, 'bench/peer-http-proxy.js', cpus);
    return {
      target: (service) => ({ url: (service === 0 ? fast : slow).url + CHAT_PATH, headers: AUTH, model: MODEL }),
      pids: () => [...processTree(fast.proc.pid!), ...processTree(slow.proc.pid!)],
      stop: async () => {
        await fast.stop();
        await slow.stop();
      },
    };
  },
};

/** This proxy, one process with a listener per stub (the `UPSTREAMS` the webhook uses for several endpoints). */
function akto(name: string, describe: string, guarded: boolean, env: (stubs: Stubs) => Record<string, string>): SystemSpec {
  return {
    name,
    describe,
    needs: [],
    guarded,
    start: async (stubs, cpus) => {
      const ports = { 0: await freePort(), 50: await freePort() } as Record<ServiceMs, number>;
      const proxy = await startProxyProcess(
        stubs.url[0],
        { AKTO_PROXY_PORT: String(ports[0]), UPSTREAMS: `${ports[0]}=APP_URL,${ports[50]}=APP_URL_1`, APP_URL_1: stubs.url[50], ...env(stubs) },
        undefined,
        cpus,
      );
      return running(proxy, (service) => ({ url: `http://127.0.0.1:${ports[service]}${CHAT_PATH}`, headers: AUTH, model: MODEL }));
    },
  };
}

/** Portkey's open-source gateway, routed to the stub with its custom-host header; optionally its regex guardrail. */
function portkey(name: string, describe: string, guardrail: boolean): SystemSpec {
  return {
    name,
    describe,
    needs: ['portkey'],
    guarded: guardrail,
    start: async (stubs, cpus, peers) => {
      const port = await freePort();
      const child = await startServer(
        name,
        [process.execPath, '--require', path.join(ROOT, 'bench/peers/loopback-only.cjs'), peers.portkey, `--port=${port}`, '--headless'],
        { cpus, env: { NODE_ENV: 'production' }, readyUrl: `http://127.0.0.1:${port}/` },
      );
      const headers = (service: ServiceMs): Record<string, string> => {
        const customHost = `${stubs.url[service]}/v1`;
        if (!guardrail) return { ...AUTH, 'x-portkey-provider': 'openai', 'x-portkey-custom-host': customHost };
        const config = {
          provider: 'openai',
          custom_host: customHost,
          before_request_hooks: [{ type: 'guardrail', id: 'bench-regex', deny: true, checks: [{ id: 'default.regexMatch', parameters: { rule: PORTKEY_REGEX, not: true } }] }],
        };
        return { ...AUTH, 'x-portkey-config': JSON.stringify(config) };
      };
      return running(child, (service) => ({ url: `http://127.0.0.1:${port}${CHAT_PATH}`, headers: headers(service), model: MODEL }));
    },
  };
}

/** The LiteLLM proxy with one model per stub, one worker, no database; local cost map (no fetch at start). */
const litellm: SystemSpec = {
  name: 'litellm',
  describe: 'LiteLLM proxy, 1 worker, no database, one model entry per stub',
  needs: ['litellm'],
  start: async (stubs, cpus, peers) => {
    const port = await freePort();
    const dir = workDir('litellm');
    const model = (service: ServiceMs): string =>
      `  - model_name: stub-${service}ms\n    litellm_params:\n      model: openai/${MODEL}\n      api_base: ${stubs.url[service]}/v1\n      api_key: sk-bench-0000\n`;
    fs.writeFileSync(path.join(dir, 'config.yaml'), `model_list:\n${model(0)}${model(50)}litellm_settings:\n  telemetry: false\n  drop_params: true\ngeneral_settings:\n  master_key: sk-bench-0000\n`);
    const child = await startServer('litellm', [peers.litellm, '--config', path.join(dir, 'config.yaml'), '--host', '127.0.0.1', '--port', String(port), '--num_workers', '1'], {
      cpus,
      dir,
      env: { LITELLM_LOCAL_MODEL_COST_MAP: 'True', LITELLM_TELEMETRY: 'False', LITELLM_LOG: 'ERROR', NO_PROXY: '*', no_proxy: '*' },
      readyUrl: `http://127.0.0.1:${port}/health/liveliness`,
      timeoutMs: 120000,
    });
    return running(child, (service) => ({ url: `http://127.0.0.1:${port}${CHAT_PATH}`, headers: AUTH, model: `stub-${service}ms` }));
  },
};

export const SYSTEMS: SystemSpec[] = [
  direct,
  nginx,
  nodeFloor,
  akto('akto-off', 'this proxy, POLICY_PACK=off (forwarding, parsing, logs, metrics)', false, () => ({ POLICY_PACK: 'off', TRACE_FILE: '/dev/null' })),
  akto('akto-default', 'this proxy, POLICY_PACK=default (PII/secrets redaction, injection blocking, stream holdback)', true, () => ({ POLICY_PACK: 'default', TRACE_FILE: '/dev/null' })),
  akto('akto-default-traced', 'this proxy, default pack + every trace sent to a local Akto ingestion receiver', true, (s) => ({
    POLICY_PACK: 'default',
    AKTO_API_BASE_URL: s.aktoUrl,
    AKTO_API_TOKEN: 'bench-token',
    SPOOL_DIR: s.spoolDir,
  })),
  portkey('portkey', 'Portkey gateway (OSS), openai provider with custom host', false),
  portkey('portkey-regex', 'Portkey gateway + its built-in regexMatch input guardrail (deny on match)', true),
  litellm,
];

/** Versions of what was measured, for the report. */
export function peerVersions(peers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = { node: process.version };
  const tryRun = (key: string, f: () => string): void => {
    try {
      out[key] = f().trim();
    } catch {
      // not installed
    }
  };
  if (peers.nginx) tryRun('nginx', () => spawnSync(peers.nginx, ['-v'], { encoding: 'utf8' }).stderr.replace('nginx version: ', ''));
  if (peers.wrk) tryRun('wrk', () => execFileSync(peers.wrk, ['-v'], { encoding: 'utf8' }).split('\n')[0]);
  if (peers.portkey) tryRun('portkey', () => (JSON.parse(fs.readFileSync(path.join(path.dirname(peers.portkey), '..', 'package.json'), 'utf8')) as { version: string }).version);
  if (peers.litellm) tryRun('litellm', () => execFileSync(path.join(path.dirname(peers.litellm), 'pip'), ['show', 'litellm'], { encoding: 'utf8' }).match(/Version: (\S+)/)?.[1] ?? 'unknown');
  return out;
}
