import { ConfigError, envEnum, envInt, envString, envUrl, type Env } from '../../common/env';
import type { Severity } from '../protocols/exchange';

export type AlertFormat = 'json' | 'slack';

/** Where alerts go and how often; every field comes from one env var (docs/akto.md, "Alerts"). */
export interface AlertConfig {
  /** May hold a secret (Slack puts it in the path): only its origin is ever logged. */
  url: URL;
  format: AlertFormat;
  minSeverity: Severity;
  /** Alerts with the same key within this window are one POST, with a count; the rest follow after it. */
  dedupWindowMs: number;
  maxPerMinute: number;
  /** Alerts waiting to be POSTed; while it is full new ones wait in their group (counted, not lost). */
  queueSize: number;
  /** Alert groups remembered for de-duplication; one pushed out with unsent events is a counted drop. */
  maxGroups: number;
  retries: number;
  timeoutMs: number;
  /** Optional Authorization header value for the receiver. Never logged. */
  authorization?: string;
  pod?: string;
  namespace?: string;
}

const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;

/** Reads ALERT_*; undefined without ALERT_WEBHOOK_URL. Bad values throw ConfigError naming the variable. */
export function loadAlertConfig(env: Env): AlertConfig | undefined {
  const format = envEnum(env, 'ALERT_FORMAT', ['json', 'slack'] as const, 'json');
  const minSeverity = envEnum(env, 'ALERT_MIN_SEVERITY', SEVERITIES, 'medium');
  const dedupWindowMs = envInt(env, 'ALERT_DEDUP_WINDOW_MS', 300_000, 0, 86_400_000);
  const maxPerMinute = envInt(env, 'ALERT_MAX_PER_MINUTE', 30, 1, 10_000);
  const queueSize = envInt(env, 'ALERT_QUEUE_SIZE', 100, 1, 100_000);
  const maxGroups = envInt(env, 'ALERT_MAX_GROUPS', 1000, 1, 1_000_000);
  const retries = envInt(env, 'ALERT_RETRIES', 3, 0, 20);
  const timeoutMs = envInt(env, 'ALERT_TIMEOUT_MS', 5000, 100, 120_000);
  const authorization = envString(env, 'ALERT_AUTHORIZATION');
  if (authorization !== undefined && /[\r\n]/.test(authorization)) throw new ConfigError('ALERT_AUTHORIZATION', 'must be a single line');
  const url = envUrl(env, 'ALERT_WEBHOOK_URL');
  if (!url) return undefined;
  return {
    url,
    format,
    minSeverity,
    dedupWindowMs,
    maxPerMinute,
    queueSize,
    maxGroups,
    retries,
    timeoutMs,
    authorization,
    pod: envString(env, 'POD_NAME'),
    namespace: envString(env, 'POD_NAMESPACE'),
  };
}
