/**
 * The proxy with tracing, as a process of its own, for the crash-and-restart tests: the same
 * wiring as main (config from env, ingest hook, SIGTERM drains the proxy then ingest).
 */
import { loadProxyConfig } from '../../../proxy/config';
import { createIngest } from '../../../proxy/ingest';
import { startProxy } from '../../../proxy/server';
import { createLogger } from '../../../common/logger';
import { createRegistry } from '../../../common/metrics';

async function main(): Promise<void> {
  const env = process.env;
  const config = loadProxyConfig(env);
  const logger = createLogger('info');
  const registry = createRegistry(false);
  const ingest = await createIngest(env, logger, registry, { version: 'e2e-child' });
  const proxy = await startProxy({ config, hooks: [ingest.hooks], logger, registry, env });
  logger.info({ url: proxy.url }, 'child ready');
  process.on('SIGTERM', () => {
    void proxy
      .close()
      .then(() => ingest.close(Number(env.DRAIN_MS ?? 5000)))
      .then(() => {
        logger.info('child stopped');
        logger.flush();
        setTimeout(() => process.exit(0), 20);
      });
  });
}

void main();
