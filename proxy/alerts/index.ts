import type { Registry } from 'prom-client';
import type { Env } from '../../common/env';
import type { ExchangeHooks } from '../hooks';
import type { IncidentListener } from '../limits/incidents';
import { SEVERITY_RANK, type Exchange, type Finding } from '../protocols/exchange';
import type { Logger } from '../../common/logger';
import { loadAlertConfig } from './config';
import { AlertSender, createAlertPost } from './sender';

export { loadAlertConfig } from './config';
export type { AlertEvent } from './format';

export interface Alerts {
  /** onComplete only: guardrail blocks at or above ALERT_MIN_SEVERITY. */
  hooks: ExchangeHooks;
  /** Subscribe to limits.onIncident: anomaly incidents at or above ALERT_MIN_SEVERITY. */
  incident: IncidentListener;
  close(drainMs: number): Promise<void>;
}

/**
 * Alerts to ALERT_WEBHOOK_URL (JSON, or a Slack message with ALERT_FORMAT=slack): each new anomaly incident
 * (then its growing count once per de-duplication window) and each guardrail block, local or Akto's, at or
 * above ALERT_MIN_SEVERITY. Undefined without ALERT_WEBHOOK_URL.
 */
export function createAlerts(env: Env, logger: Logger, registry: Registry, info: { version: string }): Alerts | undefined {
  const cfg = loadAlertConfig(env);
  if (!cfg) return undefined;
  const log = logger.child({ component: 'alerts' });
  const poster = createAlertPost(cfg, env, `akto-agent-proxy/${info.version}`);
  const sender = new AlertSender(cfg, { version: info.version, pod: cfg.pod, namespace: cfg.namespace }, poster.post, log, registry);
  const min = SEVERITY_RANK[cfg.minSeverity];
  log.info({ receiver: cfg.url.origin, format: cfg.format, minSeverity: cfg.minSeverity }, 'alerts go to ALERT_WEBHOOK_URL');

  const hooks: ExchangeHooks = {
    name: 'alerts',
    onComplete(ex: Exchange): void {
      const f = ex.findings.find((x) => x.source === 'guardrail' && x.action === 'block' && SEVERITY_RANK[x.severity] >= min);
      if (!f) return;
      const tier = tierOf(f);
      sender.report({
        type: 'guardrail_block',
        key: `block\u0000${tier}\u0000${f.ruleId}\u0000${ex.identity ?? ''}`,
        severity: f.severity,
        rule: tier === 'akto' ? f.ruleId.replace(/^akto:/, '') : f.ruleId,
        subject: ex.identity,
        model: ex.model,
        requestId: ex.id,
        at: Date.now(),
        finding: { tier, stage: f.stage, detector: f.detector, entity: f.entity },
      });
    },
  };

  return {
    hooks,
    incident(e) {
      if (SEVERITY_RANK[e.severity] < min) return;
      sender.report({
        type: 'incident',
        key: `incident\u0000${e.id}`,
        severity: e.severity,
        rule: e.kind,
        subject: e.subject,
        model: e.model,
        requestId: e.requestId,
        at: e.lastSeen,
        incident: { id: e.id, scope: e.scope, explanation: e.explanation },
      });
    },
    async close(drainMs) {
      await sender.close(drainMs);
      poster.close();
    },
  };
}

/** Akto's inline verdicts are guardrail findings with detector "akto" (proxy/akto). */
function tierOf(f: Finding): 'local' | 'akto' {
  return f.detector === 'akto' ? 'akto' : 'local';
}
