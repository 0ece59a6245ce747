import { ConfigError, declare, type Env } from '../../common/env';
import { loadIngestConfig } from '../ingest/config';
import type { RecordOptions } from '../ingest/record';
import type { ClientSettings } from './client';

const KiB = 1024;
const MiB = 1024 * KiB;

export type AktoGuardrailsMode = 'request' | 'both';

/** Inline verdicts from Akto; every field comes from one env var (docs/akto.md). */
export interface AktoGuardrailsConfig {
  mode: AktoGuardrailsMode;
  client: ClientSettings;
  onError: 'allow' | 'block';
  /** The ingest record settings, with the payload bound raised to what Akto accepts per string. */
  record: RecordOptions;
  warnWindowMs: number;
  warnMaxEntries: number;
}

/**
 * Reads AKTO_GUARDRAILS and its settings; undefined when it is off (the default). The Akto URL, token and
 * record settings are the ones traces use (AKTO_API_BASE_URL, AKTO_API_TOKEN, ...). Bad values throw
 * ConfigError naming the variable, also while off, so a typo never waits for the day it is switched on.
 */
/** Akto's inline verdicts (docs/akto.md); the URL and token are the traces' (INGEST_ENV). */
export const AKTO_GUARDRAILS_ENV = {
  mode: declare.enum('AKTO_GUARDRAILS', ['off', 'request', 'both'] as const, 'off', '`request` / `both`: Akto\'s own guardrail policies judge each request (and answer) inline, see [docs/akto.md](docs/akto.md)'),
  timeoutMs: declare.int('AKTO_GUARDRAILS_TIMEOUT_MS', 1500, 50, 60_000, 'deadline per inline check'),
  onError: declare.enum('AKTO_GUARDRAILS_ON_ERROR', ['allow', 'block'] as const, 'allow', '`allow` or `block` when there is no verdict'),
  connector: declare.stringOr('AKTO_CONNECTOR', 'akto-agent-proxy', '`akto_connector` query value of the inline checks'),
  maxPayloadBytes: declare.int('AKTO_GUARDRAILS_MAX_PAYLOAD_BYTES', 4 * MiB, KiB, 5 * MiB, 'largest body sent whole for a verdict; a larger one is an error, never cut', '4 MiB'),
  warnWindowMs: declare.int('AKTO_GUARDRAILS_WARN_WINDOW_MS', 600_000, 1000, 86_400_000, 'how long a `warn` lets the identical resubmission through'),
  warnMax: declare.int('AKTO_GUARDRAILS_WARN_MAX', 10_000, 1, 1_000_000, 'warned requests remembered (LRU)'),
};

export function loadAktoGuardrailsConfig(env: Env, version: string): AktoGuardrailsConfig | undefined {
  const E = AKTO_GUARDRAILS_ENV;
  const mode = E.mode.read(env);
  const timeoutMs = E.timeoutMs.read(env);
  const onError = E.onError.read(env);
  const connector = E.connector.read(env);
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(connector)) throw new ConfigError('AKTO_CONNECTOR', 'must be 1-64 letters, digits, "_", "." or "-"');
  // Akto binds at most 5 MiB per string: a larger body cannot be judged whole (it is then an error, never cut).
  const maxPayloadBytes = E.maxPayloadBytes.read(env);
  const warnWindowMs = E.warnWindowMs.read(env);
  const warnMaxEntries = E.warnMax.read(env);
  if (mode === 'off') return undefined;
  const ingest = loadIngestConfig(env);
  if (!ingest.baseUrl) throw new ConfigError('AKTO_API_BASE_URL', `is required when AKTO_GUARDRAILS=${mode}`);
  return {
    mode,
    client: { baseUrl: ingest.baseUrl, token: ingest.token, connector, timeoutMs, maxAnswerBytes: 4 * maxPayloadBytes + MiB },
    onError,
    record: { ...ingest.record, maxPayloadBytes, version },
    warnWindowMs,
    warnMaxEntries,
  };
}
