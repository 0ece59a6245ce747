import type { Logger } from '../../common/logger';
import { SEVERITY_RANK, type Exchange, type Finding, type Severity } from '../protocols/exchange';
import type { Alert, AnomalyState } from './anomaly';
import type { IncidentListener, Incidents } from './incidents';
import type { LimitsMetrics } from './metrics';
import type { LimitsConfig } from './policy';

type AnomaliesConfig = LimitsConfig['anomalies'];

/**
 * Where anomaly alerts go: findings and the incident tag on the exchange, metrics, incident-grouped warn lines,
 * escalations on the identity's state, and the incident listeners (the alert sender).
 */
export class AnomalyReporter {
  private readonly listeners: IncidentListener[] = [];

  constructor(
    private readonly incidents: Incidents,
    private readonly log: Logger,
    private readonly m: LimitsMetrics,
  ) {}

  /** Hears every alert that opens or extends an incident. */
  onIncident(listener: IncidentListener): void {
    this.listeners.push(listener);
  }

  /** Records alerts: findings, metrics, incident-grouped warn lines, escalation. True when one starts a cool-down block at request time. */
  raise(ex: Exchange, alerts: Alert[], state: AnomalyState, scope: 'identity' | 'workload', who: string, now: number, stage: 'request' | 'response', a: AnomaliesConfig): boolean {
    let blockNow = false;
    for (const alert of alerts) {
      // One finding per rule per exchange: the identity's alert already covers this workload one.
      if (scope === 'workload' && ex.findings.some((f) => f.source === 'anomaly' && f.ruleId === alert.ruleId)) continue;
      const escalate = scope === 'identity' ? alert.escalate : undefined;
      const { incident, opened, log: writeLine } = this.incidents.record(state, alert.ruleId, now, a.incidentGapMs, a.logIntervalMs);
      this.m.alerts.inc({ rule: alert.ruleId, severity: alert.severity, scope });
      if (opened) this.m.incidents.inc({ rule: alert.ruleId, scope });
      if (escalate) {
        if (escalate.action === 'block') {
          state.blockedUntil = Math.max(state.blockedUntil, now + escalate.durationMs);
          state.blockedBy = alert.ruleId;
          blockNow = blockNow || stage === 'request';
        } else {
          state.pack = escalate.pack;
          state.packUntil = now + escalate.durationMs;
          const note = ex.notes.limits;
          if (note) {
            note.escalatedPack = escalate.pack;
            note.escalatedUntil = state.packUntil;
          }
        }
        this.m.escalations.inc({ rule: alert.ruleId, action: escalate.action });
      }
      const finding: Finding = {
        source: 'anomaly',
        ruleId: alert.ruleId,
        action: escalate?.action === 'block' ? 'block' : 'alert',
        severity: alert.severity,
        stage,
        reason: `${scope} ${who}: ${alert.explanation} [incident ${incident.id}, alert ${incident.count}]`,
        detector: alert.ruleId.replace(/^anomaly\./, ''),
      };
      ex.findings.push(finding);
      tagIncident(ex, incident.id, alert.ruleId, alert.severity);
      for (const listener of this.listeners) {
        listener({
          id: incident.id,
          kind: alert.ruleId,
          severity: alert.severity,
          scope,
          subject: who,
          opened,
          count: incident.count,
          firstSeen: incident.firstSeen,
          lastSeen: incident.lastSeen,
          explanation: alert.explanation,
          model: ex.model,
          requestId: ex.id,
        });
      }
      if (writeLine) {
        const suppressedLines = this.incidents.suppressed;
        this.incidents.suppressed = 0;
        this.log.warn(
          {
            event: 'anomaly',
            rule: alert.ruleId,
            severity: alert.severity,
            scope,
            identity: who,
            metric: alert.metric,
            observed: alert.observed,
            baseline: round(alert.baseline),
            stddev: alert.stddev === undefined ? undefined : round(alert.stddev),
            incident: { id: incident.id, firstSeen: new Date(incident.firstSeen).toISOString(), lastSeen: new Date(incident.lastSeen).toISOString(), count: incident.count },
            escalation: escalate ? { action: escalate.action, pack: escalate.pack, untilMs: escalate.durationMs } : undefined,
            reqId: ex.id,
            suppressedLines: suppressedLines || undefined,
          },
          `anomaly ${alert.ruleId}: ${alert.explanation}`,
        );
      }
    }
    return blockNow;
  }
}

/** The trace's tag names the exchange's incident (the most severe one when alerts of several rules fired). */
export function tagIncident(ex: Exchange, id: string, kind: string, severity: Severity): void {
  const tags = (ex.traceTags ??= {});
  const current = tags['incident-severity'] as Severity | undefined;
  if (current !== undefined && SEVERITY_RANK[current] >= SEVERITY_RANK[severity]) return;
  tags.incident = id;
  tags['incident-kind'] = kind;
  tags['incident-severity'] = severity;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
