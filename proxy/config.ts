import { validateHeaderValue } from 'node:http';
import { ConfigError, declare, parseHttpUrl, type Env } from '../common/env';
import type { ListenerTls } from './http/serving';
import { AUTHORIZATION_PREFIX, authorizationVarFor, URL_VAR } from '../common/sidecar-env';
import { INGEST_ENV } from './ingest/config';
import type { Direction } from './protocols/exchange';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** One local port forwarding to one upstream base URL. */
export interface Listener {
  port: number;
  upstream: URL;
  /** The env var holding the upstream URL (APP_URL, APP_URL_1, ..., INBOUND_APP_URL). */
  urlVar: string;
  /** egress: the agent's calls to its inference endpoints; inbound: end users' calls to the agent's own API. */
  direction: Direction;
  /** Address this listener binds when it is not LISTEN_HOST (the inbound listener's INBOUND_HOST). */
  host?: string;
  /** The env var that may hold this upstream's credential, by the naming rule (egress listeners only). */
  authorizationVar?: string;
  /** When set, replaces any client Authorization header on the way to THIS upstream only. Never logged. */
  authorization?: string;
}

export interface ProxyConfig {
  listeners: Listener[];
  listenHost: string;
  adminPort: number;
  /** Separate from LISTEN_HOST: the kubelet probes the admin port from outside the pod. */
  adminHost: string;
  logLevel: LogLevel;
  /** Milliseconds to wait for the upstream's response head, and between stream chunks. */
  requestTimeoutMs: number;
  /** Largest request body that is inspected; larger inspectable bodies get 413. */
  maxRequestBytes: number;
  /** Largest response body that is buffered and inspected; larger ones stream through uninspected. */
  maxResponseBytes: number;
  /** Milliseconds to finish in-flight requests after SIGTERM. */
  drainTimeoutMs: number;
  /** Milliseconds a client has to send a request's headers (408 after). */
  clientHeaderTimeoutMs: number;
  /** Milliseconds a client has to send a whole request, headers and body (408 after); the response is not bounded by it. */
  clientRequestTimeoutMs: number;
  /** Largest request head (request line and headers) in bytes; larger ones get 431. */
  maxHeaderBytes: number;
  /** Bytes of each body (request, response, stream text) kept for the trace: AKTO_MAX_PAYLOAD_BYTES. */
  traceBytes: number;
  /** Pass `Accept-Encoding: identity` upstream on inspected routes so bodies can be read. */
  forceIdentityEncoding: boolean;
  /** HTTPS on the proxied ports (gateway mode); unset = plain HTTP. */
  listenTls?: ListenerTls;
}

const MiB = 1024 * 1024;

/** The listeners' and the request path's variables, in the order the README lists them. */
export const CORE_ENV = {
  appUrl: declare.family('APP_URL', URL_VAR, '(required)', 'the real endpoint, http or https, e.g. `https://xyz.us-east-1.aws.endpoints.huggingface.cloud`; `APP_URL_<suffix>` are the further endpoints `UPSTREAMS` names'),
  upstreams: declare.string('UPSTREAMS', 'several endpoints: `8080=APP_URL,8081=APP_URL_1` — each port forwards to the URL held in the named variable, `APP_URL` or `APP_URL_<suffix>` (the webhook sets this)'),
  proxyPort: declare.port('AKTO_PROXY_PORT', 8080, 'proxied port'),
  listenHost: declare.stringOr('LISTEN_HOST', '0.0.0.0', 'the webhook sets `127.0.0.1` so nothing outside the pod can use the sidecar'),
  adminPort: declare.port('ADMIN_PORT', 9090, '`/healthz`, `/readyz`, `/metrics` (never on the proxied port)'),
  adminHost: declare.stringOr('ADMIN_HOST', '0.0.0.0', "the admin port stays reachable for the kubelet's probes and Prometheus when `LISTEN_HOST` is loopback"),
  logLevel: declare.enum('LOG_LEVEL', LOG_LEVELS, 'info', '`trace`, `debug`, `info`, `warn`, `error`'),
  requestTimeout: declare.int('REQUEST_TIMEOUT', 120, 1, 3600, "seconds to wait for the upstream's response head, and between two chunks of a stream"),
  maxRequestSize: declare.int('MAX_REQUEST_SIZE', 10 * MiB, 1024, Number.MAX_SAFE_INTEGER, 'bytes; larger inference request bodies get 413, also once a `Content-Encoding` is undone'),
  maxResponseSize: declare.int('MAX_RESPONSE_SIZE', 10 * MiB, 1024, Number.MAX_SAFE_INTEGER, 'bytes; a larger complete response is scanned as it streams through, in bounded memory (policy `on_oversize` can refuse or pass it instead)'),
  drainTimeout: declare.int('DRAIN_TIMEOUT', 25, 0, 3600, 'seconds to finish in-flight requests after SIGTERM'),
  clientHeaderTimeout: declare.int('CLIENT_HEADER_TIMEOUT', 60, 1, 3600, 'seconds for a client to send its request head; later → 408 (at most `CLIENT_REQUEST_TIMEOUT`)'),
  clientRequestTimeout: declare.int('CLIENT_REQUEST_TIMEOUT', 300, 1, 86_400, 'seconds for a client to send its whole request, body included; later → 408. Stops once the request is in: a long answer or stream is not cut by it'),
  maxHeaderSize: declare.int('MAX_HEADER_SIZE', 16 * 1024, 1024, 1024 * 1024, 'bytes of request line and headers; more → 431'),
  authorization: declare.family(AUTHORIZATION_PREFIX, new RegExp(`^${AUTHORIZATION_PREFIX}`), '', 'the credential of `APP_URL` (`UPSTREAM_AUTHORIZATION_<suffix>`: of `APP_URL_<suffix>`), see below'),
  identityEncoding: declare.bool('UPSTREAM_IDENTITY_ENCODING', true, 'ask the upstream for uncompressed bodies on inspected routes, so they can be read'),
  tlsCertFile: declare.string('LISTEN_TLS_CERT_FILE', 'PEM certificate: the proxied ports speak HTTPS (gateway mode); set with `LISTEN_TLS_KEY_FILE`; re-read on rotation'),
  tlsKeyFile: declare.string('LISTEN_TLS_KEY_FILE', 'PEM key of `LISTEN_TLS_CERT_FILE`; both or neither'),
  tlsReloadMs: declare.int('LISTEN_TLS_RELOAD_MS', 5000, 50, 3_600_000, 'how often those files are checked for a new certificate'),
};

/** The inbound listener in front of the agent's own API (end user → proxy → agent), see docs/inbound.md. */
export const INBOUND_ENV = {
  port: declare.optionalPort('INBOUND_PORT', 'a second listener in front of the agent\'s own API (end user → proxy → agent), see [docs/inbound.md](docs/inbound.md)'),
  host: declare.string('INBOUND_HOST', 'address of the inbound listener (end users call it from outside the pod); only with `INBOUND_PORT`', '`0.0.0.0`'),
  appUrl: declare.string('INBOUND_APP_URL', 'the agent container\'s own API the inbound listener forwards to, e.g. `http://127.0.0.1:8000`; required with `INBOUND_PORT`'),
};

/** Reads and validates the data plane's environment. Throws ConfigError naming the variable. */
export function loadProxyConfig(env: Env): ProxyConfig {
  const proxyPort = CORE_ENV.proxyPort.read(env);
  const adminPort = CORE_ENV.adminPort.read(env);
  const listeners = loadListeners(env, proxyPort);
  for (const l of listeners) {
    if (l.port !== 0 && l.port === adminPort) throw new ConfigError('ADMIN_PORT', `must differ from the proxy port ${l.port}`);
  }
  const inbound = loadInboundListener(env, listeners, adminPort);
  if (inbound) listeners.push(inbound);
  return {
    listeners,
    listenHost: CORE_ENV.listenHost.read(env),
    adminPort,
    adminHost: CORE_ENV.adminHost.read(env),
    logLevel: CORE_ENV.logLevel.read(env),
    requestTimeoutMs: CORE_ENV.requestTimeout.read(env) * 1000,
    maxRequestBytes: CORE_ENV.maxRequestSize.read(env),
    maxResponseBytes: CORE_ENV.maxResponseSize.read(env),
    drainTimeoutMs: CORE_ENV.drainTimeout.read(env) * 1000,
    ...loadClientLimits(env),
    traceBytes: INGEST_ENV.maxPayloadBytes.read(env),
    forceIdentityEncoding: CORE_ENV.identityEncoding.read(env),
    listenTls: loadListenTls(env),
  };
}

/**
 * INBOUND_PORT (unset = off) opens a listener for the agent's own API: end users reach it (INBOUND_HOST, default
 * 0.0.0.0, since it is called from outside the pod) and it forwards to INBOUND_APP_URL, the agent container. It
 * never sends an upstream credential: the end user's own Authorization reaches the app unchanged.
 */
function loadInboundListener(env: Env, egress: readonly Listener[], adminPort: number): Listener | undefined {
  const url = INBOUND_ENV.appUrl.read(env);
  const port = INBOUND_ENV.port.read(env);
  if (port === undefined) {
    if (url !== undefined) throw new ConfigError('INBOUND_APP_URL', 'is set but INBOUND_PORT is not: set both to guard the agent\'s own API, or neither');
    if (INBOUND_ENV.host.read(env) !== undefined) throw new ConfigError('INBOUND_HOST', 'is set but INBOUND_PORT is not');
    return undefined;
  }
  if (port !== 0) {
    if (port === adminPort) throw new ConfigError('INBOUND_PORT', `must differ from ADMIN_PORT (${adminPort})`);
    const twin = egress.find((l) => l.port === port);
    if (twin) throw new ConfigError('INBOUND_PORT', `must differ from the proxy port ${port} of ${twin.urlVar}`);
  }
  if (url === undefined) throw new ConfigError('INBOUND_APP_URL', 'is required when INBOUND_PORT is set (the agent container\'s own API, e.g. http://127.0.0.1:8000)');
  return { port, upstream: parseHttpUrl('INBOUND_APP_URL', url), urlVar: 'INBOUND_APP_URL', direction: 'inbound', host: INBOUND_ENV.host.read(env) ?? '0.0.0.0' };
}

/**
 * How long a client may take to send a request, and how large its head may be: Node's headersTimeout,
 * requestTimeout and maxHeaderSize. The request timeout ends when the request is complete, so a stream that
 * answers for minutes is not cut by it (REQUEST_TIMEOUT bounds the upstream side).
 */
function loadClientLimits(env: Env): Pick<ProxyConfig, 'clientHeaderTimeoutMs' | 'clientRequestTimeoutMs' | 'maxHeaderBytes'> {
  const header = CORE_ENV.clientHeaderTimeout.read(env);
  const request = CORE_ENV.clientRequestTimeout.read(env);
  if (header > request) throw new ConfigError('CLIENT_HEADER_TIMEOUT', `must not exceed CLIENT_REQUEST_TIMEOUT (${request}): the headers are part of the request`);
  return { clientHeaderTimeoutMs: header * 1000, clientRequestTimeoutMs: request * 1000, maxHeaderBytes: CORE_ENV.maxHeaderSize.read(env) };
}

/** LISTEN_TLS_CERT_FILE and LISTEN_TLS_KEY_FILE come together; LISTEN_TLS_RELOAD_MS (default 5000) polls for rotation. */
function loadListenTls(env: Env): ListenerTls | undefined {
  const certFile = CORE_ENV.tlsCertFile.read(env);
  const keyFile = CORE_ENV.tlsKeyFile.read(env);
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined) throw new ConfigError('LISTEN_TLS_CERT_FILE', 'must be set together with LISTEN_TLS_KEY_FILE');
  if (keyFile === undefined) throw new ConfigError('LISTEN_TLS_KEY_FILE', 'must be set together with LISTEN_TLS_CERT_FILE');
  return { certFile, keyFile, reloadMs: CORE_ENV.tlsReloadMs.read(env) };
}

/**
 * APP_URL gives one upstream on AKTO_PROXY_PORT. UPSTREAMS (set by the webhook when a pod talks to
 * several endpoints) lists `port=APP_URL_<suffix>` pairs: each port forwards to the URL held in
 * that variable, so a URL that comes from a Secret never appears in the pod spec as text. Each
 * URL variable owns one credential variable by name, and a credential variable no listener owns
 * stops the start: a token is never sent anywhere but the upstream it was configured for.
 */
function loadListeners(env: Env, proxyPort: number): Listener[] {
  const spec = CORE_ENV.upstreams.read(env);
  const entries: Array<{ port: number; urlVar: string }> = [];
  if (spec === undefined) entries.push({ port: proxyPort, urlVar: 'APP_URL' });
  else {
    for (const entry of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
      const m = /^(\d{1,5})=([A-Za-z_][A-Za-z0-9_]*)$/.exec(entry);
      if (!m) throw new ConfigError('UPSTREAMS', `entry "${entry}" must look like 8080=APP_URL (port=ENV_VAR_NAME)`);
      const port = Number(m[1]);
      const urlVar = m[2];
      if (port > 65535) throw new ConfigError('UPSTREAMS', `port ${port} is out of range`);
      if (entries.some((e) => e.port === port)) throw new ConfigError('UPSTREAMS', `port ${port} is listed twice`);
      if (!URL_VAR.test(urlVar)) {
        throw new ConfigError('UPSTREAMS', `names ${urlVar}: listener URL variables are APP_URL or APP_URL_<suffix>, so each has one credential variable (UPSTREAM_AUTHORIZATION or UPSTREAM_AUTHORIZATION_<suffix>)`);
      }
      const twin = entries.find((e) => e.urlVar === urlVar);
      if (twin) throw new ConfigError('UPSTREAMS', `names ${urlVar} for ports ${twin.port} and ${port}: each upstream (and its credential) belongs to one listener`);
      entries.push({ port, urlVar });
    }
    if (entries.length === 0) throw new ConfigError('UPSTREAMS', 'lists no upstream');
  }
  const listeners = entries.map(({ port, urlVar }): Listener => {
    const value = CORE_ENV.appUrl.readAs(env, urlVar);
    if (value === undefined) {
      throw new ConfigError(urlVar, spec === undefined ? 'is required but not set' : `is named by UPSTREAMS for port ${port} but not set`);
    }
    const authorizationVar = authorizationVarFor(urlVar);
    const authorization = CORE_ENV.authorization.readAs(env, authorizationVar);
    if (authorization !== undefined) checkHeaderValue(authorizationVar, authorization);
    return { port, upstream: parseHttpUrl(urlVar, value), urlVar, direction: 'egress', authorizationVar, authorization };
  });
  for (const key of Object.keys(env)) {
    if (!key.startsWith(AUTHORIZATION_PREFIX) || !CORE_ENV.authorization.readAs(env, key)) continue;
    if (listeners.some((l) => l.authorizationVar === key)) continue;
    const owner = `APP_URL${key.slice(AUTHORIZATION_PREFIX.length)}`;
    const listed = listeners.map((l) => l.urlVar).join(', ');
    throw new ConfigError(key, `is set but no listener forwards to ${owner} (the listeners use ${listed}); a credential is only sent to the upstream of its own URL variable`);
  }
  return listeners;
}

/** A header value Node would refuse at send time (CR, LF, other control characters) is a start error. */
function checkHeaderValue(key: string, value: string): void {
  try {
    validateHeaderValue('authorization', value);
  } catch {
    throw new ConfigError(key, 'must be a single-line header value without control characters');
  }
}
