/**
 * Entry point: `node dist/webhook/main.js`. Loads settings (file + env), sets up TLS (files or
 * self-managed), asks the cluster about native sidecars, serves HTTPS, drains on SIGTERM.
 */
import { ConfigError } from '../proxy/config-env';
import { createLogger, Logger } from '../proxy/telemetry/logger';
import { createRegistry } from '../proxy/telemetry/metrics';
import { detectNativeSidecars } from './cluster';
import { EventRecorder } from './event-recorder';
import type { ClusterInfo } from './inject';
import type { KubeApi } from './kube-api';
import { SelfManagedTls } from './self-managed-tls';
import { createWebhookServer, TlsMaterial } from './server';
import { loadSettings, Settings, WEBHOOK_VERSION } from './settings';
import { readTlsFiles, TlsFileWatcher } from '../proxy/http/tls-files';

const NATIVE_RECHECK_MS = 10 * 60 * 1000;

async function connectKube(logger: Logger): Promise<KubeApi | undefined> {
  try {
    const { loadKube } = await import('./kube.js');
    return await loadKube();
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'Kubernetes API not available');
    return undefined;
  }
}

async function firstSync(tls: SelfManagedTls, logger: Logger): Promise<TlsMaterial> {
  for (;;) {
    try {
      return (await tls.sync()).material;
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'self-managed certificate setup failed; retrying in 5 s');
      await new Promise((r) => setTimeout(r, 5000));
    }
  }
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

  const needKube = settings.certs.mode === 'selfManaged' || settings.nativeSidecar === 'auto' || settings.events.enabled;
  const kube = needKube ? await connectKube(logger) : undefined;
  if (settings.events.enabled && !kube) logger.warn('events.enabled, but no Kubernetes API: skips and opt-outs are only logged and sent as admission warnings');
  const events = settings.events.enabled && kube
    ? new EventRecorder({ kube, logger, registry, maxPerSecond: settings.events.maxPerSecond, instance: process.env.POD_NAME ?? 'akto-agent-proxy-webhook' })
    : undefined;

  const cluster: ClusterInfo = { nativeSidecars: settings.nativeSidecar === 'always' };
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

  let material: TlsMaterial;
  let selfManaged: SelfManagedTls | undefined;
  let fileWatcher: TlsFileWatcher | undefined;
  if (settings.certs.mode === 'selfManaged') {
    if (!kube) {
      logger.fatal('certs.mode selfManaged needs the Kubernetes API (in-cluster service account or KUBECONFIG)');
      process.exitCode = 2;
      return;
    }
    selfManaged = new SelfManagedTls(kube, settings, logger);
    material = await firstSync(selfManaged, logger);
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

  const server = createWebhookServer({
    settings,
    logger,
    registry,
    tls: material,
    cluster: () => cluster,
    ready: selfManaged ? () => selfManaged.ready() : undefined,
    events,
  });
  selfManaged?.start((m) => server.setTls(m));
  fileWatcher?.start((m) => server.setTls(m));
  const port = await server.listen(settings.server.port);
  logger.info({ port, certMode: settings.certs.mode }, 'webhook listening');

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    selfManaged?.stop();
    fileWatcher?.stop();
    events?.close();
    void server.drain(settings.server.drainSeconds).then(() => {
      logger.info('stopped');
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err) => {
  createLogger('info').fatal({ err: (err as Error).message }, 'webhook failed to start');
  process.exit(1);
});
