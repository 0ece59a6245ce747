import { STATUS_CODES } from 'node:http';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import type { Exchange, Finding, Outcome } from '../protocols/exchange';
import type { RecordSettings } from './config';

/**
 * One element of `batchData` for Akto's POST /api/ingestData. Every value is a string, as
 * Akto's IngestDataBatch DTO binds them (header maps, tag and _guardrail are JSON text).
 */
export interface AktoRecord {
  path: string;
  requestHeaders: string;
  responseHeaders: string;
  method: string;
  requestPayload: string;
  responsePayload: string;
  ip: string;
  destIp?: string;
  time: string;
  statusCode: string;
  type: string;
  status: string;
  akto_account_id: string;
  akto_vxlan_id: string;
  is_pending: string;
  source: string;
  tag: string;
  _guardrail?: string;
}

export interface RecordOptions extends RecordSettings {
  /** The proxy's version, for the `agent-proxy` tag. */
  version: string;
}

export interface BuiltRecord {
  record: AktoRecord;
  /** How many payloads were cut to maxPayloadBytes. */
  truncated: number;
}

export const REDACTED = '<redacted>';

/** Status the client got when no upstream response was recorded. */
const OUTCOME_STATUS: Record<Outcome, number> = {
  ok: 0,
  blocked: 0,
  upstream_error: 502,
  timeout: 504,
  too_large: 413,
  aborted: 0,
};

/** Akto's documented behaviours are block / alert / mask; ours map onto them. */
const AKTO_ACTION: Record<Finding['action'], string> = {
  block: 'block',
  limit: 'block',
  redact: 'mask',
  flag: 'alert',
  alert: 'alert',
};

const SEVERITY_RANK: Record<Finding['severity'], number> = { low: 0, medium: 1, high: 2, critical: 3 };
const ACTION_RANK: Record<Finding['action'], number> = { flag: 0, alert: 0, redact: 1, limit: 2, block: 3 };

/** Builds the Akto record for a finished exchange. Pure: everything it needs is in ex and opts. */
export function buildAktoRecord(ex: Exchange, opts: RecordOptions): BuiltRecord {
  let truncated = 0;
  const cut = (text: string): string => {
    const out = truncateUtf8(text, opts.maxPayloadBytes);
    if (out !== text) truncated++;
    return out;
  };

  const host = opts.serverName ?? ex.upstream.host;
  const res = ex.response;
  const status = res?.status ?? OUTCOME_STATUS[ex.outcome ?? 'aborted'];
  let responsePayload = res === undefined ? '' : res.streamText ?? (res.body ? res.body.toString('utf8') : '');
  if (res?.truncated) responsePayload += '\n[cut at the proxy capture bound MAX_RESPONSE_SIZE]';

  const record: AktoRecord = {
    path: ex.path,
    requestHeaders: JSON.stringify(requestHeaderObject(ex.requestHeaders, host, ex.requestBody.length, opts.secretHeaders)),
    responseHeaders: JSON.stringify(responseHeaderObject(res?.headers, ex.responseHeaders, opts.secretHeaders)),
    method: ex.method.toUpperCase(),
    requestPayload: cut(ex.requestBody.toString('utf8')),
    responsePayload: cut(responsePayload),
    ip: opts.podIp ?? (normalizeAddress(ex.clientAddress) || '0.0.0.0'),
    time: String(opts.timeUnit === 'ms' ? Math.floor(ex.startedAt) : Math.floor(ex.startedAt / 1000)),
    statusCode: String(status),
    type: 'HTTP/1.1',
    status: STATUS_CODES[status] ?? String(status),
    akto_account_id: '1000000',
    akto_vxlan_id: '0',
    is_pending: 'false',
    source: 'MIRRORING',
    tag: JSON.stringify(tagObject(ex, opts)),
  };
  const upstreamHost = ex.upstream.hostname.replace(/^\[|\]$/g, '');
  const destIp = ex.upstreamAddress ?? (isIP(upstreamHost) ? upstreamHost : undefined);
  if (destIp) record.destIp = destIp;
  if (ex.findings.length > 0) record._guardrail = JSON.stringify(guardrailObject(ex.findings));
  return { record, truncated };
}

function requestHeaderObject(
  headers: IncomingHttpHeaders,
  host: string,
  forwardedLength: number,
  secrets: ReadonlySet<string>,
): Record<string, string> {
  const out: Record<string, string> = { host };
  for (const name of Object.keys(headers)) {
    const key = name.toLowerCase();
    if (key === 'host') continue;
    const value = headers[name];
    if (value === undefined) continue;
    out[key] = secrets.has(key) ? REDACTED : Array.isArray(value) ? value.join(', ') : String(value);
  }
  // The body Akto gets is the forwarded one; a guardrail edit may have changed its length.
  if (out['content-length'] !== undefined) out['content-length'] = String(forwardedLength);
  return out;
}

function responseHeaderObject(
  headers: OutgoingHttpHeaders | undefined,
  extra: Record<string, string>,
  secrets: ReadonlySet<string>,
): Record<string, string> {
  const out: Record<string, string> = {};
  const add = (name: string, value: number | string | readonly string[] | undefined): void => {
    if (value === undefined) return;
    const key = name.toLowerCase();
    out[key] = secrets.has(key) ? REDACTED : Array.isArray(value) ? value.join(', ') : String(value);
  };
  if (headers) for (const name of Object.keys(headers)) add(name, headers[name]);
  for (const name of Object.keys(extra)) add(name, extra[name]);
  return out;
}

function tagObject(ex: Exchange, opts: RecordOptions): Record<string, string> {
  const tag: Record<string, string> = {
    'gen-ai': 'Gen AI',
    source: 'AGENTIC',
    'ai-agent': opts.agentName,
    'agent-proxy': opts.version,
    guardrail: guardrailOutcome(ex),
    outcome: ex.outcome ?? 'ok',
    'exchange-id': ex.id,
  };
  if (ex.api !== 'passthrough') tag.api = ex.api;
  // Forwarded (or refused) without the guardrails reading the body: say so instead of looking clean.
  if (ex.parseError !== undefined) tag['request-body'] = 'unparsed';
  if (ex.model !== undefined) tag.model = ex.model;
  if (ex.stream) tag.stream = 'true';
  if (ex.identity !== undefined) tag.identity = ex.identity;
  if (opts.podName !== undefined) tag.pod = opts.podName;
  if (opts.podNamespace !== undefined) tag.namespace = opts.podNamespace;
  return tag;
}

/** One word for the tag: what the guardrails did to this exchange. */
function guardrailOutcome(ex: Exchange): string {
  if (ex.outcome === 'blocked') return 'blocked';
  if (ex.findings.length === 0) return 'allowed';
  const top = primaryFinding(ex.findings);
  return top.action === 'redact' ? 'redacted' : top.action === 'block' || top.action === 'limit' ? 'blocked' : 'flagged';
}

/** The finding that decided the exchange: the strongest action, then the highest severity. */
function primaryFinding(findings: readonly Finding[]): Finding {
  let top = findings[0];
  for (const f of findings) {
    const byAction = ACTION_RANK[f.action] - ACTION_RANK[top.action];
    if (byAction > 0 || (byAction === 0 && SEVERITY_RANK[f.severity] > SEVERITY_RANK[top.severity])) top = f;
  }
  return top;
}

/** Akto's _guardrail keys (Gateway.recordGuardrailVerdict), plus every finding for the audit trail. */
function guardrailObject(findings: readonly Finding[]): Record<string, unknown> {
  const top = primaryFinding(findings);
  return {
    guardrailViolated: true,
    guardrailAction: AKTO_ACTION[top.action],
    guardrailReason: top.reason,
    guardrailPolicy: top.detector ? `${top.source}/${top.detector}` : top.source,
    guardrailRule: top.ruleId,
    guardrailSeverity: top.severity.toUpperCase(),
    guardrailStage: top.stage,
    guardrailFindings: findings.map((f) => ({
      source: f.source,
      rule: f.ruleId,
      action: f.action,
      severity: f.severity,
      stage: f.stage,
      ...(f.entity !== undefined ? { entity: f.entity } : {}),
    })),
  };
}

function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/** Cuts text to at most maxBytes of UTF-8 (on a character boundary) and says so in a marker. */
export function truncateUtf8(text: string, maxBytes: number): string {
  // Every UTF-16 unit is at most 3 UTF-8 bytes, so short strings need no byte count.
  if (text.length * 3 <= maxBytes) return text;
  const total = Buffer.byteLength(text, 'utf8');
  if (total <= maxBytes) return text;
  const marker = `…[truncated by akto-agent-proxy: ${total} bytes, kept `;
  const keep = Math.max(0, maxBytes - Buffer.byteLength(marker) - 16);
  const bytes = Buffer.from(text, 'utf8');
  let end = keep;
  // Step back over UTF-8 continuation bytes so no character is split.
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return `${bytes.toString('utf8', 0, end)}${marker}${end}]`;
}
