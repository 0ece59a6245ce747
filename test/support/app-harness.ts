import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Registry } from 'prom-client';
import { startApp, type RunningApp } from '../../proxy/app';
import { createLogger } from '../../common/logger';
import { createRegistry } from '../../common/metrics';
import { trackInFlight } from './in-flight';
import { logSink } from './proxy-harness';

export interface TestApp {
  app: RunningApp;
  url: string;
  /** Every log line the sidecar wrote, parsed. */
  logs: Array<Record<string, unknown>>;
  registry: Registry;
  /** One metric in the Prometheus text format. */
  metric(name: string): Promise<string>;
  close(): Promise<void>;
}

/** The whole sidecar built from the environment as main does, on loopback ports, with its own spool directory. */
export async function startTestApp(env: Record<string, string>): Promise<TestApp> {
  const spool = fs.mkdtempSync(path.join(os.tmpdir(), 'akto-app-'));
  const sink = logSink();
  const registry = createRegistry(false);
  const app = trackInFlight(
    await startApp(
      { AKTO_PROXY_PORT: '0', ADMIN_PORT: '0', ADMIN_HOST: '127.0.0.1', LISTEN_HOST: '127.0.0.1', AKTO_BATCH_INTERVAL_MS: '50', SPOOL_DIR: spool, ...env },
      { logger: createLogger('info', sink.stream), registry },
    ),
    registry,
  );
  return {
    app,
    url: app.url,
    logs: sink.lines,
    registry,
    metric: async (name) => (await registry.getSingleMetricAsString(name)) ?? '',
    async close() {
      await app.close();
      fs.rmSync(spool, { recursive: true, force: true });
    },
  };
}
