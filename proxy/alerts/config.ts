import { ConfigError, declare, type Env } from '../../common/env';
import { POD_ENV } from '../../common/sidecar-env';
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
export const ALERTS_ENV = {
  url: declare.url('ALERT_WEBHOOK_URL', 'incidents and severe guardrail blocks as JSON or Slack messages, see [docs/akto.md](docs/akto.md#alerts-alert_webhook_url)'),
  format: declare.enum('ALERT_FORMAT', ['json', 'slack'] as const, 'json', '`json` or `slack`'),
  minSeverity: declare.enum('ALERT_MIN_SEVERITY', SEVERITIES, 'medium', '`low`, `medium`, `high` or `critical`: nothing below it is alerted'),
  dedupWindowMs: declare.int('ALERT_DEDUP_WINDOW_MS', 300_000, 0, 86_400_000, 'one POST per group per window; `0` sends every event'),
  maxPerMinute: declare.int('ALERT_MAX_PER_MINUTE', 30, 1, 10_000, 'alert POSTs per minute at most'),
  queueSize: declare.int('ALERT_QUEUE_SIZE', 100, 1, 100_000, 'alert POST bodies waiting for the worker'),
  maxGroups: declare.int('ALERT_MAX_GROUPS', 1000, 1, 1_000_000, 'alert groups remembered for de-duplication'),
  retries: declare.int('ALERT_RETRIES', 3, 0, 20, 'retries per alert'),
  timeoutMs: declare.int('ALERT_TIMEOUT_MS', 5000, 100, 120_000, 'per alert POST'),
  authorization: declare.string('ALERT_AUTHORIZATION', '`Authorization` header value for the alert receiver (never logged)'),
};

export function loadAlertConfig(env: Env): AlertConfig | undefined {
  const E = ALERTS_ENV;
  const format = E.format.read(env);
  const minSeverity = E.minSeverity.read(env);
  const dedupWindowMs = E.dedupWindowMs.read(env);
  const maxPerMinute = E.maxPerMinute.read(env);
  const queueSize = E.queueSize.read(env);
  const maxGroups = E.maxGroups.read(env);
  const retries = E.retries.read(env);
  const timeoutMs = E.timeoutMs.read(env);
  const authorization = E.authorization.read(env);
  if (authorization !== undefined && /[\r\n]/.test(authorization)) throw new ConfigError('ALERT_AUTHORIZATION', 'must be a single line');
  const url = E.url.read(env);
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
    pod: POD_ENV.name.read(env),
    namespace: POD_ENV.namespace.read(env),
  };
}
