import * as http from 'node:http';
import * as https from 'node:https';
import { ConfigError, Env } from '../../common/env';
import type { ExchangeHooks } from '../hooks';
import type { Exchange } from '../protocols/exchange';
import type { Logger } from '../../common/logger';
import type { Registry } from '../../common/metrics';
import { IngestConfig, loadIngestConfig } from './config';
import { DeadLetterFile } from './dead-letter';
import { Delivery, RecordSink } from './delivery';
import { IngestMetrics } from './metrics';
import { buildAktoRecord, RecordOptions } from './record';
import { aktoRoute, createAktoSender } from './sender';
import { errorText, Spool } from './spool';
import { TraceFileSink } from './trace-file';
import { SecretScrubber } from '../../common/scrub';

export { buildAktoRecord } from './record';
export type { AktoRecord, RecordOptions } from './record';
export { loadIngestConfig } from './config';

export interface Ingest {
  /** Register after guardrails and limits: only onComplete is used. */
  hooks: ExchangeHooks;
  /** On SIGTERM: stop intake, deliver within drainMs, spool the rest. */
  close(drainMs: number): Promise<void>;
}

const BUILD_ERROR_LOG_INTERVAL_MS = 60_000;

/**
 * Traces to Akto. Reads its env vars (ConfigError on bad values), opens the spool or the trace
 * file, and returns the hook that turns each finished exchange into one Akto record.
 */
export async function createIngest(env: Env, logger: Logger, registry: Registry, info: { version: string; secrets?: SecretScrubber }): Promise<Ingest> {
  const config = loadIngestConfig(env);
  const log = logger.child({ component: 'ingest' });
  const metrics = new IngestMetrics(registry);
  const secrets = info.secrets ?? SecretScrubber.fromEnv(env);
  const sink = await openSink(config, log, metrics, secrets);
  const opts: RecordOptions = { ...config.record, version: info.version, secrets };
  let lastBuildErrorLog = -Infinity;

  const hooks: ExchangeHooks = {
    name: 'ingest',
    onComplete(ex: Exchange): void {
      try {
        const { record, truncated } = buildAktoRecord(ex, opts);
        if (truncated > 0) metrics.truncated.inc(truncated);
        sink.enqueue(JSON.stringify(record));
      } catch (err) {
        metrics.dropped.inc({ reason: 'build_error' });
        const now = Date.now();
        if (now - lastBuildErrorLog >= BUILD_ERROR_LOG_INTERVAL_MS) {
          lastBuildErrorLog = now;
          log.error({ err: errorText(err), exchange: ex.id }, 'could not build the Akto trace record; record dropped');
        }
      }
    },
  };
  return { hooks, close: (drainMs) => sink.close(drainMs) };
}

async function openSink(config: IngestConfig, log: Logger, metrics: IngestMetrics, secrets: SecretScrubber): Promise<RecordSink> {
  if (!config.baseUrl) {
    const sink = await TraceFileSink.open(config.traceFile, log, metrics, { maxPendingBytes: config.delivery.memoryQueueBytes });
    log.info({ file: config.traceFile }, 'AKTO_API_BASE_URL is not set: trace records go to TRACE_FILE');
    return sink;
  }
  if (config.token === undefined) {
    log.warn('AKTO_API_TOKEN is not set: Akto will refuse the traces unless its ingestion service runs without authentication');
  }
  let spool: Spool;
  let deadLetter: DeadLetterFile;
  try {
    spool = await Spool.open(config.spool, log, metrics);
    deadLetter = await DeadLetterFile.open(config.spool.dir, config.spool.deadLetterMaxBytes, log, metrics, secrets);
  } catch (err) {
    throw new ConfigError('SPOOL_DIR', `cannot use ${config.spool.dir} as the trace spool: ${errorText(err)}`);
  }
  const d = config.delivery;
  const sender = createAktoSender(config.baseUrl, config.token, d.maxInFlight, d.requestTimeoutMs);
  log.info({ akto: config.baseUrl.origin, spool: config.spool.dir, batchSize: d.batchSize }, 'trace records go to Akto /api/ingestData');
  const delivery = new Delivery(sender, spool, deadLetter, d, log, metrics);
  probeToken(config.baseUrl, config.token, d.requestTimeoutMs, log, (status) => delivery.reportAuthRefused(status));
  return delivery;
}

/**
 * One GET /api/auth-check at start, so a bad token shows in the log before the first batch. The
 * log line says what was checked: with no token, a 2xx only means Akto runs without authentication.
 */
function probeToken(baseUrl: URL, token: string | undefined, timeoutMs: number, log: Logger, onRefused: (status: number) => void): void {
  const url = aktoRoute(baseUrl, '/api/auth-check');
  const request = url.protocol === 'https:' ? https.request : http.request;
  const headers: http.OutgoingHttpHeaders = token === undefined ? {} : { authorization: token };
  const req = request(url, { method: 'GET', headers, timeout: timeoutMs }, (res) => {
    res.resume();
    const status = res.statusCode ?? 0;
    const checked = { akto: baseUrl.origin, check: 'GET /api/auth-check', status };
    if (status === 401 || status === 403) onRefused(status);
    else if (status >= 200 && status < 300) {
      if (token === undefined) log.warn(checked, 'Akto answered the auth check without a token: its ingestion service runs without authentication (AKTO_API_TOKEN is not set)');
      else log.info(checked, 'Akto accepted AKTO_API_TOKEN (auth check passed)');
    } else log.warn(checked, `could not verify AKTO_API_TOKEN: the auth check answered HTTP ${status} (is AKTO_API_BASE_URL the data-ingestion service?)`);
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (err) => log.warn({ err: err.message, akto: baseUrl.origin }, 'Akto is not reachable at start; traces are kept and retried until it is'));
  req.end();
}
