import * as path from 'node:path';
import { ConfigError, Env, envBool, envEnum, envInt, envList, envString, envUrl } from '../../common/env';
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

export function loadIngestConfig(env: Env): IngestConfig {
  const baseUrl = envUrl(env, 'AKTO_API_BASE_URL');
  const token = envString(env, 'AKTO_API_TOKEN');
  if (token !== undefined && /^bearer\s/i.test(token)) {
    throw new ConfigError('AKTO_API_TOKEN', 'must be the raw token without a "Bearer " prefix (Akto rejects the prefix with 401)');
  }
  if (token !== undefined && /[\r\n]/.test(token)) throw new ConfigError('AKTO_API_TOKEN', 'must be a single line');
  // Akto's readers parse `time` as a 32-bit int of seconds; a millisecond value drops every record downstream.
  if (envEnum(env, 'AKTO_TIME_UNIT', ['s', 'ms'] as const, 's') === 'ms') {
    throw new ConfigError('AKTO_TIME_UNIT', 'ms is not supported: Akto reads `time` as an int of epoch seconds and drops records with a millisecond time; unset it (records use seconds)');
  }
  const spoolMax = envInt(env, 'SPOOL_MAX_BYTES', 256 * MiB, 64 * KiB);
  const podName = envString(env, 'POD_NAME');
  const serverName = envString(env, 'APP_SERVER_NAME');
  const maxBatchBytes = envInt(env, 'AKTO_MAX_BATCH_BYTES', 8 * MiB, 64 * KiB, 9 * MiB);
  const retryBaseMs = envInt(env, 'AKTO_RETRY_BASE_MS', 500, 1, 60_000);
  return {
    baseUrl,
    token,
    // Beside the spool by default: in a pod that is the writable emptyDir (the root filesystem is read-only).
    traceFile: path.resolve(envString(env, 'TRACE_FILE') ?? path.join(envString(env, 'SPOOL_DIR') ?? '.', 'traces.jsonl')),
    record: {
      serverName,
      podIp: envString(env, 'POD_IP'),
      agentName: envString(env, 'PROJECT_NAME') ?? podName ?? serverName ?? 'akto-agent-proxy',
      podName,
      podNamespace: envString(env, 'POD_NAMESPACE'),
      // Two payloads plus headers must fit one 10 MiB POST; Akto allows 5 MiB per string.
      maxPayloadBytes: envInt(env, 'AKTO_MAX_PAYLOAD_BYTES', MiB, KiB, 4 * MiB),
      secretHeaders: new Set([...SECRET_HEADERS, ...envList(env, 'AKTO_SECRET_HEADERS').map((h) => h.toLowerCase())]),
    },
    delivery: {
      batchSize: envInt(env, 'AKTO_BATCH_SIZE', 100, 1, 10_000),
      batchIntervalMs: envInt(env, 'AKTO_BATCH_INTERVAL_MS', 1000, 1, 600_000),
      maxBatchBytes,
      maxInFlight: envInt(env, 'AKTO_MAX_IN_FLIGHT', 4, 1, 64),
      requestTimeoutMs: envInt(env, 'AKTO_TIMEOUT_MS', 10_000, 100, 600_000),
      memoryQueueBytes: envInt(env, 'AKTO_MEMORY_QUEUE_BYTES', 16 * MiB, 64 * KiB, 1024 * MiB),
      retryBaseMs,
      retryMaxMs: Math.max(retryBaseMs, envInt(env, 'AKTO_RETRY_MAX_MS', 30_000, 1, 3_600_000)),
      authRetryMs: envInt(env, 'AKTO_AUTH_RETRY_MS', 60_000, 1, 3_600_000),
      writeAhead: envBool(env, 'SPOOL_WRITE_AHEAD', false),
      errorAttempts: envInt(env, 'AKTO_ERROR_ATTEMPTS', 4, 1, 100),
    },
    spool: {
      dir: path.resolve(envString(env, 'SPOOL_DIR', './.spool')),
      maxBytes: spoolMax,
      segmentBytes: envInt(env, 'SPOOL_SEGMENT_BYTES', Math.min(4 * MiB, Math.max(16 * KiB, Math.floor(spoolMax / 16))), 4 * KiB, spoolMax),
      fsyncIntervalMs: envInt(env, 'SPOOL_FSYNC_MS', 1000, 0, 60_000),
      deadLetterMaxBytes: envInt(env, 'DEAD_LETTER_MAX_BYTES', 64 * MiB, 0),
    },
  };
}
