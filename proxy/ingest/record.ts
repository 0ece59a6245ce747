import { STATUS_CODES } from 'node:http';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import { SEVERITY_RANK, type Exchange, type Finding, type Outcome } from '../protocols/exchange';
import type { SecretScrubber } from '../../common/scrub';
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
  /** Configured secret values, replaced wherever they show up in the record. */
  secrets?: SecretScrubber;
}

export interface BuiltRecord {
  record: AktoRecord;
  /** How many payloads were cut to maxPayloadBytes. */
  truncated: number;
}

export const REDACTED = '<redacted>';

/**
 * Largest serialized record. Akto's ingestion service answers 200 to a bigger one and then its
 * Kafka producer refuses the message, so the record is lost; 64 KiB stay free for what the service
 * adds (`"mode":"observe"` in tag) and Kafka's own framing.
 */
export const MAX_RECORD_BYTES = 5 * 1024 * 1024 - 64 * 1024;

/** Findings listed in _guardrail; a prompt full of e-mail addresses must not make the record huge. */
export const MAX_LISTED_FINDINGS = 100;

/** Status the client got when no upstream response was recorded. */
const OUTCOME_STATUS: Record<Outcome, number> = {
  ok: 0,
  blocked: 0,
  upstream_error: 502,
  timeout: 504,
  too_large: 413,
  client_timeout: 408,
  error: 500,
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

const ACTION_RANK: Record<Finding['action'], number> = { flag: 0, alert: 0, redact: 1, limit: 2, block: 3 };

/** Builds the Akto record for a finished exchange. Pure: everything it needs is in ex and opts. */
export function buildAktoRecord(ex: Exchange, opts: RecordOptions): BuiltRecord {
  const cutFields = new Set<'requestPayload' | 'responsePayload'>();
  const scrub = (text: string): string => (opts.secrets ? opts.secrets.scrub(text) : text);
  const cut = (text: string, field: 'requestPayload' | 'responsePayload'): string => {
    const out = truncateUtf8(text, opts.maxPayloadBytes);
    if (out !== text) cutFields.add(field);
    return out;
  };

  // Inbound, the end user is the client and this pod the server: the host is the one the user called.
  const inbound = ex.direction === 'inbound';
  const calledHost = inbound ? firstValue(ex.requestHeaders.host) : undefined;
  const host = opts.serverName ?? calledHost ?? ex.upstream.host;
  const res = ex.response;
  const status = res?.status ?? OUTCOME_STATUS[ex.outcome ?? 'aborted'];
  let responsePayload = res === undefined ? '' : res.streamText ?? (res.body ? res.body.toString('utf8') : '');
  if (res?.truncated) responsePayload += '\n[cut at the proxy capture bound AKTO_MAX_PAYLOAD_BYTES]';

  const record: AktoRecord = {
    path: scrub(ex.path),
    requestHeaders: scrub(JSON.stringify(requestHeaderObject(ex.requestHeaders, host, ex.requestBody.length, opts.secretHeaders))),
    responseHeaders: scrub(JSON.stringify(responseHeaderObject(res?.headers, ex.responseHeaders, opts.secretHeaders))),
    method: ex.method.toUpperCase(),
    requestPayload: cut(scrub(ex.requestBody.toString('utf8')), 'requestPayload'),
    responsePayload: cut(scrub(responsePayload), 'responsePayload'),
    ip: (inbound ? undefined : opts.podIp) ?? (normalizeAddress(ex.clientAddress) || '0.0.0.0'),
    // Epoch seconds: Akto's readers parse `time` as an int (a millisecond value fails and drops the record).
    time: String(Math.floor(ex.startedAt / 1000)),
    statusCode: String(status),
    type: 'HTTP/1.1',
    status: STATUS_CODES[status] ?? String(status),
    akto_account_id: '1000000',
    akto_vxlan_id: '0',
    is_pending: 'false',
    source: 'MIRRORING',
    tag: '',
  };
  const upstreamHost = ex.upstream.hostname.replace(/^\[|\]$/g, '');
  const destIp = (inbound ? opts.podIp : undefined) ?? ex.upstreamAddress ?? (isIP(upstreamHost) ? upstreamHost : undefined);
  if (destIp) record.destIp = destIp;
  if (ex.findings.length > 0) record._guardrail = scrub(JSON.stringify(guardrailObject(ex.findings)));
  for (const field of fitRecord(record)) cutFields.add(field);
  const tag = tagObject(ex, opts);
  if (cutFields.size > 0) tag.truncated = [...cutFields].sort().join(',');
  record.tag = scrub(JSON.stringify(tag));
  return { record, truncated: cutFields.size };
}

/** Bytes of a string as a JSON string literal (quotes and escapes included). */
function jsonBytes(text: string): number {
  return Buffer.byteLength(JSON.stringify(text));
}

/**
 * Cuts the payloads (the larger first, each keeping at least its fair half) until the serialized
 * record fits MAX_RECORD_BYTES; returns the payload fields it cut. The cheap bound (every UTF-16
 * unit at most 6 bytes escaped) skips the measuring for ordinary records.
 */
function fitRecord(record: AktoRecord): Array<'requestPayload' | 'responsePayload'> {
  let bound = 1024; // the small fields and the tag added after this check
  for (const v of Object.values(record)) if (typeof v === 'string') bound += v.length * 6 + 8;
  if (bound <= MAX_RECORD_BYTES) return [];
  const cut: Array<'requestPayload' | 'responsePayload'> = [];
  for (let round = 0; round < 8; round++) {
    const req = jsonBytes(record.requestPayload);
    const res = jsonBytes(record.responsePayload);
    const over = Buffer.byteLength(JSON.stringify(record)) + 1024 - MAX_RECORD_BYTES;
    if (over <= 0) break;
    const budget = Math.max(0, req + res - over);
    const reqShare = req <= budget / 2 ? req : res <= budget / 2 ? budget - res : budget / 2;
    const targets: Array<['requestPayload' | 'responsePayload', number, number]> = [
      ['requestPayload', req, reqShare],
      ['responsePayload', res, budget - reqShare],
    ];
    for (const [field, size, share] of targets) {
      if (size <= share) continue;
      const text = record[field];
      // Escaping inflates some text (quotes, control characters): scale the raw byte target by it.
      const raw = Buffer.byteLength(text);
      record[field] = truncateUtf8(text, Math.max(0, Math.floor((share * raw) / size) - 2));
      if (!cut.includes(field)) cut.push(field);
    }
  }
  return cut;
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
    direction: ex.direction,
  };
  if (ex.api !== 'passthrough') tag.api = ex.api;
  // Forwarded (or refused) without the guardrails reading the body: say so instead of looking clean.
  if (ex.parseError !== undefined) tag['request-body'] = 'unparsed';
  if (ex.model !== undefined) tag.model = ex.model;
  if (ex.stream) tag.stream = 'true';
  if (ex.identity !== undefined) tag.identity = ex.identity;
  if (opts.podName !== undefined) tag.pod = opts.podName;
  if (opts.podNamespace !== undefined) tag.namespace = opts.podNamespace;
  if (ex.findings.length > 0 && tag.guardrail !== 'allowed') {
    const top = primaryFinding(ex.findings);
    // A block without a blocking finding (e.g. Akto unreachable with ON_ERROR=block) is named by its hook.
    if (tag.guardrail !== 'blocked' || top.action === 'block' || top.action === 'limit') tag['decided-by'] = decidedBy(top);
  }
  // Hooks add keys (incident, akto-request, ...); they never replace the keys above.
  if (ex.traceTags) for (const key of Object.keys(ex.traceTags)) if (!(key in tag)) tag[key] = ex.traceTags[key];
  return tag;
}

/**
 * Which tier decided, so "why was this blocked" has one answer: `local:<rule id>` for this proxy's
 * policy, `akto:<policy>` for Akto's inline verdicts (guardrail findings with detector "akto", whose
 * rule id already says so), `limit:<rule>`, or the anomaly rule.
 */
function decidedBy(f: Finding): string {
  if (f.source === 'guardrail') return f.detector === 'akto' ? f.ruleId : `local:${f.ruleId}`;
  return f.source === 'limit' ? `limit:${f.ruleId}` : f.ruleId;
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
    ...(top.category !== undefined ? { guardrailCategory: top.category, guardrailScore: top.score, guardrailTier: top.tier } : {}),
    ...(findings.length > MAX_LISTED_FINDINGS ? { guardrailFindingsOmitted: findings.length - MAX_LISTED_FINDINGS } : {}),
    guardrailFindings: findings.slice(0, MAX_LISTED_FINDINGS).map((f) => ({
      source: f.source,
      rule: f.ruleId,
      action: f.action,
      severity: f.severity,
      stage: f.stage,
      ...(f.entity !== undefined ? { entity: f.entity } : {}),
      ...(f.category !== undefined ? { category: f.category } : {}),
      ...(f.score !== undefined ? { score: f.score } : {}),
      ...(f.tier !== undefined ? { tier: f.tier } : {}),
    })),
  };
}

function firstValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
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
