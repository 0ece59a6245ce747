#!/usr/bin/env node
import { startApp } from './app';
import { ConfigError } from '../common/env';
import { createLogger } from '../common/logger';
import { SecretScrubber } from '../common/scrub';

async function main(): Promise<void> {
  let app;
  try {
    app = await startApp(process.env);
  } catch (err) {
    const logger = createLogger('info', undefined, SecretScrubber.fromEnv(process.env));
    if (err instanceof ConfigError) {
      // One line naming the variable; no stack trace for a configuration mistake.
      logger.fatal({ key: err.key }, `configuration error: ${err.message}`);
    } else {
      logger.fatal({ err }, 'failed to start');
    }
    logger.flush();
    setTimeout(() => process.exit(err instanceof ConfigError ? 2 : 1), 50);
    return;
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    app.logger.info({ signal }, 'shutting down: draining in-flight requests');
    app
      .close()
      .then(() => {
        app.logger.info('stopped');
        app.logger.flush();
        setTimeout(() => process.exit(0), 20);
      })
      .catch((err: unknown) => {
        app.logger.error({ err }, 'error during shutdown');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

void main();
