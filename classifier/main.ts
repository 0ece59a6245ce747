#!/usr/bin/env node
/**
 * The classifier service (the model tier, a third program in the image):
 *   node dist/classifier/main.js
 * Env: CLASSIFIER_PORT (default 8090), CLASSIFIER_HOST (0.0.0.0), MODELS_DIR (default: where `make models`
 * puts them), CLASSIFIER_MAX_BATCH (16), CLASSIFIER_MAX_QUEUE (512 windows), CLASSIFIER_THREADS (1), LOG_LEVEL.
 * Listens at once (readyz says "loading model" until the model is in memory); missing model files are a
 * configuration error (exit 2) naming MODELS_DIR.
 */
import { ConfigError, envEnum, envInt, envPort, envString, type Env } from '../common/env';
import { createLogger } from '../common/logger';
import { createRegistry } from '../common/metrics';
import { missingModelFiles, modelsDir } from './models';
import { startClassifierServer } from './server';
import { createClassifier, type Classifier } from './service';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;

async function startClassifierService(env: Env) {
  const dir = modelsDir(env);
  const missing = missingModelFiles(dir);
  if (missing.length > 0) throw new ConfigError('MODELS_DIR', `model files missing in ${dir}: ${missing.join(', ')} (run make models)`);
  const logger = createLogger(envEnum(env, 'LOG_LEVEL', LEVELS, 'info'));
  const registry = createRegistry();
  const maxBatch = envInt(env, 'CLASSIFIER_MAX_BATCH', 16, 1, 256);
  const maxQueue = envInt(env, 'CLASSIFIER_MAX_QUEUE', 512, 1, 1_000_000);
  const threads = envInt(env, 'CLASSIFIER_THREADS', 1, 1, 64);
  // Listening before the model is in memory: readyz answers "loading model" meanwhile.
  const loaded: { classifier?: Classifier } = {};
  const server = await startClassifierServer({
    port: envPort(env, 'CLASSIFIER_PORT', 8090),
    host: envString(env, 'CLASSIFIER_HOST', '0.0.0.0'),
    classifier: () => loaded.classifier,
    registry,
    logger,
  });
  loaded.classifier = await createClassifier({ modelsDir: dir, maxBatch, maxQueue, threads, registry });
  logger.info({ url: server.url, modelsDir: dir, maxBatch, maxQueue, threads }, 'classifier ready');
  return {
    url: server.url,
    logger,
    async close() {
      server.drain();
      await server.close();
      await loaded.classifier?.close();
    },
  };
}

// A program's entry starts unconditionally (like proxy/main.ts and webhook/main.ts): in the image's bundle
// `require.main` is null (scripts/bundle.js), so a CLI guard here would never fire.
startClassifierService(process.env)
  .then((svc) => {
    const stop = (): void => {
      void svc.close().then(() => process.exit(0));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  })
  .catch((err: unknown) => {
    const logger = createLogger('info');
    if (err instanceof ConfigError) logger.fatal({ key: err.key }, `configuration error: ${err.message}`);
    else logger.fatal({ err }, 'classifier failed to start');
    logger.flush();
    setTimeout(() => process.exit(err instanceof ConfigError ? 2 : 1), 50);
  });
