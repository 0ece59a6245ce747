import type { Severity, Stage } from '../protocols/exchange';
import type { AlertFormat } from './config';

/**
 * One thing worth an operator's attention. Built from rule ids, counts and names only: never prompt text,
 * answers, evidence or secrets (a finding's free-text reason is left out on purpose).
 */
export interface AlertEvent {
  type: 'incident' | 'guardrail_block';
  /** Events with the same key are one alert group (de-duplicated, counted). */
  key: string;
  severity: Severity;
  /** The anomaly rule of an incident, or the guardrail rule that blocked. */
  rule: string;
  /** Identity key (user:…, key:<hash>, ip:…) or, for a workload-wide incident, the workload. */
  subject?: string;
  model?: string;
  requestId: string;
  at: number;
  incident?: { id: string; scope: 'identity' | 'workload'; explanation: string };
  finding?: { tier: 'local' | 'akto'; stage: Stage; detector?: string; entity?: string };
}

/** An alert group as it is sent: the latest event, how many there were, and when. */
export interface AlertGroupView {
  event: AlertEvent;
  count: number;
  firstSeen: number;
  lastSeen: number;
}

export interface AlertContext {
  version: string;
  pod?: string;
  namespace?: string;
}

/** Client-controlled names (identity, model) are bounded so an alert stays small. */
const MAX_FIELD = 200;

function bounded(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const clean = v.replace(/\p{Cc}/gu, ' ');
  return clean.length > MAX_FIELD ? `${clean.slice(0, MAX_FIELD)}…` : clean;
}

function where(ctx: AlertContext): string | undefined {
  if (!ctx.pod && !ctx.namespace) return undefined;
  return `${ctx.namespace ?? 'default'}/${ctx.pod ?? '?'}`;
}

export function alertTitle(g: AlertGroupView, ctx: AlertContext): string {
  const e = g.event;
  const who = bounded(e.subject) ?? 'unknown identity';
  const pod = where(ctx);
  const head =
    e.type === 'incident'
      ? `Anomaly incident ${e.rule} (${e.severity}) for ${who}`
      : `Guardrail block by ${e.finding?.tier === 'akto' ? 'Akto policy' : 'local rule'} ${e.rule} (${e.severity}) for ${who}`;
  return `${head}${pod ? ` in ${pod}` : ''}${g.count > 1 ? `, ${g.count} times` : ''}`;
}

/** The JSON document POSTed to ALERT_WEBHOOK_URL, in the configured format. */
export function alertBody(g: AlertGroupView, ctx: AlertContext, format: AlertFormat): string {
  return JSON.stringify(format === 'slack' ? slack(g, ctx) : plain(g, ctx));
}

function plain(g: AlertGroupView, ctx: AlertContext): Record<string, unknown> {
  const e = g.event;
  return {
    source: 'akto-agent-proxy',
    version: ctx.version,
    type: e.type,
    severity: e.severity,
    title: alertTitle(g, ctx),
    rule: e.rule,
    ...(e.incident ? { incident: { id: e.incident.id, kind: e.rule, scope: e.incident.scope, explanation: e.incident.explanation } } : {}),
    ...(e.finding ? { finding: { rule: e.rule, ...e.finding } } : {}),
    identity: bounded(e.subject),
    pod: ctx.pod,
    namespace: ctx.namespace,
    model: bounded(e.model),
    count: g.count,
    firstSeen: new Date(g.firstSeen).toISOString(),
    lastSeen: new Date(g.lastSeen).toISOString(),
    requestId: e.requestId,
  };
}

/** Slack mrkdwn reads <…> as links and mentions (<!channel>): escape what clients control. */
function esc(v: string): string {
  return v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A Slack incoming-webhook message: the title as text (notifications) and the facts as fields. */
function slack(g: AlertGroupView, ctx: AlertContext): Record<string, unknown> {
  const e = g.event;
  const facts: Array<[string, string | undefined]> = [
    ['Severity', e.severity],
    [e.type === 'incident' ? 'Incident' : 'Rule', e.type === 'incident' ? `${e.incident?.id} (${e.rule})` : `${e.finding?.tier}:${e.rule}`],
    ['Identity', bounded(e.subject)],
    ['Pod', where(ctx)],
    ['Model', bounded(e.model)],
    ['Count', String(g.count)],
    ['First seen', new Date(g.firstSeen).toISOString()],
    ['Last seen', new Date(g.lastSeen).toISOString()],
  ];
  const title = alertTitle(g, ctx);
  const blocks: unknown[] = [
    { type: 'section', text: { type: 'mrkdwn', text: `*${esc(title)}*` } },
    { type: 'section', fields: facts.filter(([, v]) => v !== undefined).map(([k, v]) => ({ type: 'mrkdwn', text: `*${k}*\n${esc(v!)}` })) },
  ];
  if (e.incident) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: esc(e.incident.explanation) }] });
  return { text: esc(title), blocks };
}
