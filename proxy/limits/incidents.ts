import type { Severity } from '../protocols/exchange';
import type { AnomalyRuleId, AnomalyState, Incident } from './anomaly';

/** What listeners (alerts) hear each time an alert opens or extends an incident. */
export interface IncidentEvent {
  id: string;
  /** The anomaly rule, e.g. anomaly.loop. */
  kind: AnomalyRuleId;
  severity: Severity;
  scope: 'identity' | 'workload';
  /** The identity key or the workload name. */
  subject: string;
  /** True for the alert that opened the incident. */
  opened: boolean;
  count: number;
  firstSeen: number;
  lastSeen: number;
  /** Generated from counts and baselines; never prompt text. */
  explanation: string;
  model?: string;
  requestId: string;
}

export type IncidentListener = (event: IncidentEvent) => void;

/**
 * Groups repeated alerts of one rule for one identity into an incident (id, first and last seen,
 * count) and decides which alerts get a warn line: the first of an incident, then at most one per
 * `logIntervalMs`, and never more than `linesPerMinute` across the process.
 */
export class Incidents {
  private seq = 0;
  private tokens: number;
  private tokensAt = 0;
  /** Warn lines dropped by the process-wide cap since the last line that was written. */
  suppressed = 0;

  constructor(private linesPerMinute: number, private readonly idPrefix: string) {
    this.tokens = linesPerMinute;
  }

  setLinesPerMinute(n: number): void {
    this.linesPerMinute = n;
    this.tokens = Math.min(this.tokens, n);
  }

  /** Records one alert; `opened` is true for a new incident, `log` when a warn line should be written. */
  record(state: AnomalyState, ruleId: AnomalyRuleId, now: number, gapMs: number, logIntervalMs: number): { incident: Incident; opened: boolean; log: boolean } {
    const map = (state.incidents ??= new Map());
    let inc = map.get(ruleId);
    let opened = false;
    if (!inc || now - inc.lastSeen > gapMs) {
      inc = { id: `${this.idPrefix}-${(++this.seq).toString(36)}`, firstSeen: now, lastSeen: now, count: 0, lastLogged: -Infinity };
      map.set(ruleId, inc);
      opened = true;
    }
    inc.lastSeen = now;
    inc.count++;
    let log = false;
    if (now - inc.lastLogged >= logIntervalMs) {
      if (this.take(now)) {
        log = true;
        inc.lastLogged = now;
      } else {
        this.suppressed++;
      }
    }
    return { incident: inc, opened, log };
  }

  private take(now: number): boolean {
    if (now > this.tokensAt) {
      this.tokens = Math.min(this.linesPerMinute, this.tokens + ((now - this.tokensAt) * this.linesPerMinute) / 60_000);
      this.tokensAt = now;
    }
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}
