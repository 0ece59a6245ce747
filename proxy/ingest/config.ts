import * as path from 'node:path';
import { ConfigError, declare, type Env } from '../../common/env';
import { POD_ENV } from '../../common/sidecar-env';
import { SECRET_HEADERS } from '../../common/logger';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Where records go and how; every field comes from one env var (see docs/ingest.md). */
export interface IngestConfig {
  /** Akto's data-ingestion base URL; undefined = write records to traceFile instead. */
  baseUrl?: URL;
  /** Raw token for the Authorization header. Never logged. */
  token?: string;
  traceFile: string;
  record: RecordSettings;
  delivery: DeliverySettings;
  spool: SpoolSettings;
}

/** What buildAktoRecord needs besides the exchange. */
export interface RecordSettings {
  /** Overrides the upstream host as the `host` header (Akto names the collection after it). */
  serverName?: string;
  /** Used as the record's `ip` when set; else the client address. */
  podIp?: string;
  /** Value of the `ai-agent` tag. */
  agentName: string;
  podName?: string;
  podNamespace?: string;
  maxPayloadBytes: number;
  /** Lower-case header names whose values become "<redacted>". */
  secretHeaders: ReadonlySet<string>;
}

export interface DeliverySettings {
  batchSize: number;
  batchIntervalMs: number;
  maxBatchBytes: number;
  maxInFlight: number;
  requestTimeoutMs: number;
  /** Records held in memory (pending + queued + in flight) before new ones go to the spool. */
  memoryQueueBytes: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Pause between attempts while Akto answers 401/403. */
  authRetryMs: number;
  /** Every record goes to the spool first and is sent from there (survives SIGKILL/OOM). */
  writeAhead: boolean;
  /** Answers of 500/422 in a row before a batch is split, and a single record dead-lettered. */
  errorAttempts: number;
}

export interface SpoolSettings {
  dir: string;
  maxBytes: number;
  segmentBytes: number;
  /** fsync the active segment at most this often; 0 = after every write. */
  fsyncIntervalMs: number;
  deadLetterMaxBytes: number;
}

/** Where traces go and how they are delivered, batched and spooled (docs/ingest.md has the details). */
export const INGEST_ENV = {
  baseUrl: declare.url('AKTO_API_BASE_URL', 'Akto data-ingestion URL; unset = traces to a local JSONL file, see [docs/ingest.md](docs/ingest.md)'),
  token: declare.string('AKTO_API_TOKEN', 'raw Akto token (no `Bearer ` prefix); never logged'),
  timeUnit: declare.enum('AKTO_TIME_UNIT', ['s', 'ms'] as const, 's', 'only `s`: `ms` is refused at start (Akto drops records with a millisecond `time`)'),
  serverName: declare.string('APP_SERVER_NAME', '`host` in the record (the Akto collection name); default the upstream host'),
  projectName: declare.string('PROJECT_NAME', 'tag of the traces; default `POD_NAME`'),
  maxPayloadBytes: declare.int('AKTO_MAX_PAYLOAD_BYTES', MiB, KiB, 4 * MiB, 'bytes per payload in a trace record'),
  secretHeaders: declare.list('AKTO_SECRET_HEADERS', 'extra header names to redact in traces, comma-separated'),
  batchSize: declare.int('AKTO_BATCH_SIZE', 100, 1, 10_000, 'records per POST'),
  batchIntervalMs: declare.int('AKTO_BATCH_INTERVAL_MS', 1000, 1, 600_000, 'longest wait before a partial batch is sent'),
  maxBatchBytes: declare.int('AKTO_MAX_BATCH_BYTES', 8 * MiB, 64 * KiB, 9 * MiB, 'body bound per POST'),
  maxInFlight: declare.int('AKTO_MAX_IN_FLIGHT', 4, 1, 64, 'POSTs open at once'),
  timeoutMs: declare.int('AKTO_TIMEOUT_MS', 10_000, 100, 600_000, 'per POST, the whole exchange'),
  memoryQueueBytes: declare.int('AKTO_MEMORY_QUEUE_BYTES', 16 * MiB, 64 * KiB, 1024 * MiB, 'records held in memory before new ones go to the spool'),
  errorAttempts: declare.int('AKTO_ERROR_ATTEMPTS', 4, 1, 100, 'answers of 500/422 in a row before a batch is split'),
  retryBaseMs: declare.int('AKTO_RETRY_BASE_MS', 500, 1, 60_000, 'first backoff after a failed POST'),
  retryMaxMs: declare.int('AKTO_RETRY_MAX_MS', 30_000, 1, 3_600_000, 'longest backoff'),
  authRetryMs: declare.int('AKTO_AUTH_RETRY_MS', 60_000, 1, 3_600_000, 'pause between attempts while Akto answers 401/403'),
  spoolDir: declare.string('SPOOL_DIR', 'spool directory (the chart mounts an emptyDir)', '`./.spool`'),
  spoolMaxBytes: declare.int('SPOOL_MAX_BYTES', 256 * MiB, 64 * KiB, Number.MAX_SAFE_INTEGER, 'spool bound'),
  spoolSegmentBytes: declare.int('SPOOL_SEGMENT_BYTES', 4 * MiB, 4 * KiB, Number.MAX_SAFE_INTEGER, 'spool segment size', 'min(4 MiB, `SPOOL_MAX_BYTES`/16)'),
  spoolFsyncMs: declare.int('SPOOL_FSYNC_MS', 1000, 0, 60_000, 'fsync the active segment at most this often; `0` = after every write'),
  spoolWriteAhead: declare.bool('SPOOL_WRITE_AHEAD', false, 'every record goes through the spool'),
  deadLetterMaxBytes: declare.int('DEAD_LETTER_MAX_BYTES', 64 * MiB, 0, Number.MAX_SAFE_INTEGER, 'bound of `SPOOL_DIR/dead-letter.jsonl`'),
  traceFile: declare.string('TRACE_FILE', 'JSONL sink when `AKTO_API_BASE_URL` is unset; default `traces.jsonl` in `SPOOL_DIR` when set, else `./traces.jsonl`'),
};

export function loadIngestConfig(env: Env): IngestConfig {
  const E = INGEST_ENV;
  const spoolDir = E.spoolDir.read(env);
  const baseUrl = E.baseUrl.read(env);
  const token = E.token.read(env);
  if (token !== undefined && /^bearer\s/i.test(token)) {
    throw new ConfigError('AKTO_API_TOKEN', 'must be the raw token without a "Bearer " prefix (Akto rejects the prefix with 401)');
  }
  if (token !== undefined && /[\r\n]/.test(token)) throw new ConfigError('AKTO_API_TOKEN', 'must be a single line');
  // Akto's readers parse `time` as a 32-bit int of seconds; a millisecond value drops every record downstream.
  if (E.timeUnit.read(env) === 'ms') {
    throw new ConfigError('AKTO_TIME_UNIT', 'ms is not supported: Akto reads `time` as an int of epoch seconds and drops records with a millisecond time; unset it (records use seconds)');
  }
  const spoolMax = E.spoolMaxBytes.read(env);
  const podName = POD_ENV.name.read(env);
  const serverName = E.serverName.read(env);
  const maxBatchBytes = E.maxBatchBytes.read(env);
  const retryBaseMs = E.retryBaseMs.read(env);
  return {
    baseUrl,
    token,
    // Beside the spool by default: in a pod that is the writable emptyDir (the root filesystem is read-only).
    traceFile: path.resolve(E.traceFile.read(env) ?? path.join(spoolDir ?? '.', 'traces.jsonl')),
    record: {
      serverName,
      podIp: POD_ENV.ip.read(env),
      agentName: E.projectName.read(env) ?? podName ?? serverName ?? 'akto-agent-proxy',
      podName,
      podNamespace: POD_ENV.namespace.read(env),
      // Two payloads plus headers must fit one 10 MiB POST; Akto allows 5 MiB per string.
      maxPayloadBytes: E.maxPayloadBytes.read(env),
      secretHeaders: new Set([...SECRET_HEADERS, ...E.secretHeaders.read(env).map((h) => h.toLowerCase())]),
    },
    delivery: {
      batchSize: E.batchSize.read(env),
      batchIntervalMs: E.batchIntervalMs.read(env),
      maxBatchBytes,
      maxInFlight: E.maxInFlight.read(env),
      requestTimeoutMs: E.timeoutMs.read(env),
      memoryQueueBytes: E.memoryQueueBytes.read(env),
      retryBaseMs,
      retryMaxMs: Math.max(retryBaseMs, E.retryMaxMs.read(env)),
      authRetryMs: E.authRetryMs.read(env),
      writeAhead: E.spoolWriteAhead.read(env),
      errorAttempts: E.errorAttempts.read(env),
    },
    spool: {
      dir: path.resolve(spoolDir ?? './.spool'),
      maxBytes: spoolMax,
      segmentBytes: E.spoolSegmentBytes.read(env, { fallback: Math.min(4 * MiB, Math.max(16 * KiB, Math.floor(spoolMax / 16))), max: spoolMax }),
      fsyncIntervalMs: E.spoolFsyncMs.read(env),
      deadLetterMaxBytes: E.deadLetterMaxBytes.read(env),
    },
  };
}
