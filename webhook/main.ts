/**
 * Entry point: `node dist/webhook/main.js`. Loads settings (file + env), listens at once (probes see a live
 * process; /readyz says what start-up still waits for), waits for the Kubernetes API server when it needs it,
 * asks it about native sidecars, sets up TLS (files or self-managed) and the Events recorder, then serves
 * admissions. SIGTERM at any moment stops it: during start-up at once, once serving after the drain window.
 */
import { ConfigError } from '../common/env';
import { createLogger, Logger } from '../common/logger';
import { createRegistry } from '../common/metrics';
import { generateCa, issueServingCert } from './certs';
import { detectNativeSidecars } from './cluster';
import { EventRecorder } from './event-recorder';
import type { ClusterInfo } from './inject';
import type { KubeApi } from './kube-api';
import { SelfManagedTls } from './self-managed-tls';
import { createWebhookServer, TlsMaterial, WebhookServer } from './server';
import { loadSettings, Settings, WEBHOOK_VERSION } from './settings';
import { readTlsFiles, TlsFileWatcher } from '../common/tls-files';

const NATIVE_RECHECK_MS = 10 * 60 * 1000;
/** One API call while waiting for the API server: a blackholed address must not hang start-up for minutes. */
const API_ATTEMPT_TIMEOUT_MS = 5000;
const API_RETRY_MS = 2000;
/** While waiting, the same warning is repeated this often (the first failure is logged at once). */
const WAIT_LOG_EVERY_MS = 30_000;

class Stopped extends Error {}

/** Start-up state shared with the signal handlers and /readyz. */
class Startup {
  reason: string | undefined = 'starting';
  stopping = false;
  private wake?: () => void;

  /** Resolves after ms, or at once when SIGTERM arrives (then throws Stopped). */
  async sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    this.wake = undefined;
    if (this.stopping) throw new Stopped();
  }

  stop(): void {
    this.stopping = true;
    this.wake?.();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: no answer in ${ms / 1000} s`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e as Error)),
    );
  });
}

/** Retries GET /version until the API server answers; every failure is visible in /readyz, and in the log. */
async function waitForApiServer(kube: KubeApi, startup: Startup, logger: Logger): Promise<void> {
  const where = kube.server ?? 'the configured address';
  let lastLog = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      const v = await withTimeout(kube.serverVersion(), API_ATTEMPT_TIMEOUT_MS, `GET ${where}/version`);
      if (attempt > 1) logger.info({ server: where, version: v.gitVersion, attempts: attempt }, 'Kubernetes API server reachable');
      return;
    } catch (err) {
      if (startup.stopping) throw new Stopped();
      startup.reason = `waiting for the Kubernetes API server at ${where}: ${(err as Error).message}`;
      if (Date.now() - lastLog >= WAIT_LOG_EVERY_MS) {
        lastLog = Date.now();
        logger.warn({ server: where, attempt, err: (err as Error).message }, 'waiting for the Kubernetes API server (check NetworkPolicies and the kubernetes Service); retrying');
      }
      await startup.sleep(API_RETRY_MS);
    }
  }
}

async function connectKube(logger: Logger): Promise<KubeApi | undefined> {
  try {
    const { loadKube } = await import('./kube.js');
    return await loadKube();
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'Kubernetes API not available');
    return undefined;
  }
}

async function firstSync(tls: SelfManagedTls, startup: Startup, logger: Logger): Promise<TlsMaterial> {
  for (;;) {
    try {
      return (await tls.sync()).material;
    } catch (err) {
      startup.reason = `self-managed certificate setup failed: ${(err as Error).message}`;
      logger.error({ err: (err as Error).message }, 'self-managed certificate setup failed; retrying in 5 s');
      await startup.sleep(5000);
    }
  }
}

/** Served until the real certificate is known: only kubelet's probes (which do not verify) come this early. */
function placeholderTls(settings: Settings): TlsMaterial {
  const now = new Date();
  const ca = generateCa(now, 1, 'akto-agent-proxy-webhook-starting');
  const leaf = issueServingCert(ca, [`${settings.certs.serviceName}.${settings.certs.serviceNamespace}.svc`], now, 1);
  return { cert: leaf.certPem, key: leaf.keyPem };
}

async function main(): Promise<void> {
  let settings: Settings;
  try {
    settings = loadSettings();
  } catch (err) {
    createLogger('info').fatal({ err: (err as Error).message }, 'invalid webhook settings');
    process.exitCode = 2;
    return;
  }
  const logger = createLogger(settings.server.logLevel).child({ component: 'webhook', version: WEBHOOK_VERSION });
  logger.info({ settings }, 'effective settings');
  const registry = createRegistry();
  const startup = new Startup();

  // Filled in as start-up proceeds; the signal handlers are installed before anything can hang.
  const live: { server?: WebhookServer; events?: EventRecorder; stopTimers?: () => void } = {};
  const stop = (signal: string) => {
    if (startup.stopping) return;
    startup.stop();
    logger.info({ signal, starting: startup.reason }, 'shutting down');
    live.events?.close();
    if (startup.reason !== undefined) {
      // Never ready, so nothing was routed here: nothing to drain.
      const closed = live.server?.close() ?? Promise.resolve();
      void Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]).then(() => process.exit(0));
      return;
    }
    live.stopTimers?.();
    void live.server!.drain(settings.server.drainSeconds).then(() => {
      logger.info('stopped');
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  let material: TlsMaterial;
  let fileWatcher: TlsFileWatcher | undefined;
  if (settings.certs.mode === 'selfManaged') {
    material = placeholderTls(settings);
  } else {
    try {
      material = readTlsFiles(settings.tls.certFile, settings.tls.keyFile);
    } catch (err) {
      logger.fatal({ err: err instanceof ConfigError ? err.message : (err as Error).message }, 'cannot load the serving certificate');
      process.exitCode = 2;
      return;
    }
    fileWatcher = new TlsFileWatcher(settings.tls.certFile, settings.tls.keyFile, settings.tls.reloadIntervalMs, logger, material);
  }

  const cluster: ClusterInfo = { nativeSidecars: settings.nativeSidecar === 'always' };
  let selfManaged: SelfManagedTls | undefined;
  const server = createWebhookServer({
    settings,
    logger,
    registry,
    tls: material,
    cluster: () => cluster,
    starting: () => startup.reason,
    ready: () => selfManaged?.readiness() ?? true,
    // Admissions are refused until start-up ends, so the recorder (it needs the API server) comes later.
    events: { record: (event) => live.events?.record(event) },
  });
  live.server = server;
  const port = await server.listen(settings.server.port);
  logger.info({ port, certMode: settings.certs.mode }, 'listening; starting up');

  const needKube = settings.certs.mode === 'selfManaged' || settings.nativeSidecar === 'auto' || settings.events.enabled;
  const kube = needKube ? await connectKube(logger) : undefined;
  if (settings.certs.mode === 'selfManaged' && !kube) {
    logger.fatal('certs.mode selfManaged needs the Kubernetes API (in-cluster service account or KUBECONFIG)');
    await server.close();
    process.exitCode = 2;
    return;
  }
  if (settings.events.enabled && !kube) logger.warn('events.enabled, but no Kubernetes API: skips and opt-outs are only logged and sent as admission warnings');
  if (kube) await waitForApiServer(kube, startup, logger);
  if (settings.events.enabled && kube) {
    live.events = new EventRecorder({ kube, logger, registry, maxPerSecond: settings.events.maxPerSecond, instance: process.env.POD_NAME ?? 'akto-agent-proxy-webhook' });
  }

  if (settings.nativeSidecar === 'auto') {
    const refresh = async () => {
      const d = await detectNativeSidecars(kube);
      if (d.native !== cluster.nativeSidecars) logger.info({ decision: d.source }, 'native sidecar mode');
      cluster.nativeSidecars = d.native;
    };
    await refresh();
    logger.info({ native: cluster.nativeSidecars }, 'nativeSidecar auto');
    if (kube) setInterval(() => void refresh(), NATIVE_RECHECK_MS).unref();
  }

  if (settings.certs.mode === 'selfManaged') {
    selfManaged = new SelfManagedTls(kube!, settings, logger);
    material = await firstSync(selfManaged, startup, logger);
    server.setTls(material);
  }
  selfManaged?.start((m) => server.setTls(m));
  fileWatcher?.start((m) => server.setTls(m));
  live.stopTimers = () => {
    selfManaged?.stop();
    fileWatcher?.stop();
  };
  startup.reason = undefined;
  logger.info({ port, certMode: settings.certs.mode }, 'webhook listening');
}

main().catch((err) => {
  if (err instanceof Stopped) return; // SIGTERM during start-up: the handler exits
  createLogger('info').fatal({ err: (err as Error).message }, 'webhook failed to start');
  process.exit(1);
});
