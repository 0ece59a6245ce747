import { Counter, Histogram, type Registry } from 'prom-client';
import type { Env } from '../../common/env';
import type { ExchangeHooks } from '../hooks';
import type { ChannelFilter } from '../protocols/stream-filter';
import { headerValue } from '../http/headers';
import { buildAktoRecord } from '../ingest/record';
import { assembledResponse } from '../protocols/assembled';
import type { BlockVerdict, Exchange, Finding, Stage } from '../protocols/exchange';
import { serializeRequest } from '../protocols/request';
import { serializeResponse } from '../protocols/response';
import type { Logger } from '../../common/logger';
import { createGuardrailsClient, type CheckErrorReason } from './client';
import { loadAktoGuardrailsConfig, type AktoGuardrailsConfig } from './config';
import { applyModifiedRequest, applyModifiedResponse, type ModifiedProblem } from './modified';
import { readVerdict, type AktoVerdict } from './verdict';
import { WarnMemory, warnFingerprint } from './warn';

export { loadAktoGuardrailsConfig } from './config';

/** What this proxy made of one phase's check (also the word in the trace tag `akto-<phase>`). */
export type CheckResult = 'allowed' | 'blocked' | 'modified' | 'alert' | 'warn' | 'warn-resubmitted' | 'approval' | 'modified-not-applied' | 'error' | 'skipped';

export interface PhaseNote {
  result: CheckResult;
  ms?: number;
  policy?: string;
  rule?: string;
  behaviour?: string;
  error?: CheckErrorReason;
}

declare module '../protocols/exchange' {
  interface ExchangeNotes {
    /** Akto's inline verdict per stage. */
    akto?: AktoNote;
  }
}

/** ex.notes.akto */
export type AktoNote = Partial<Record<Stage, PhaseNote>>;

export interface AktoGuardrails {
  /** Register after the local guardrails and limits: a local block or a 429 never waits for Akto. */
  hooks: ExchangeHooks;
  close(): void;
}

/** Session and request ids Akto's guardrails service correlates on (it reads real headers first). */
const CORRELATION_HEADERS = ['x-session-id', 'x-conversation-id', 'x-user-id', 'x-akto-installer-akto_session_id', 'x-kong-request-id'];
/** Consecutive transport failures that open the breaker, and how long it stays open. */
const BREAKER_FAILURES = 5;
const BREAKER_OPEN_MS = 2000;
const ERROR_LOG_INTERVAL_MS = 60_000;
/** A stream with only Akto inspecting it: text flows untouched, the check runs when it ends. */
const PASS_THROUGH: ChannelFilter = { push: (delta) => ({ text: delta }), end: () => ({ text: '' }) };

interface Judged {
  verdict?: AktoVerdict;
  error?: { reason: CheckErrorReason; detail: string };
  ms: number;
}

/**
 * Akto as a second guardrail tier (AKTO_GUARDRAILS=request|both): each inspected exchange is also judged by
 * Akto's `/api/http-proxy` with the trace record, and Akto's verdict (block, modify, warn, alert, approval)
 * is applied after the local policy's. Undefined when AKTO_GUARDRAILS is off.
 */
export function createAktoGuardrails(env: Env, logger: Logger, registry: Registry, info: { version: string }): AktoGuardrails | undefined {
  const loaded = loadAktoGuardrailsConfig(env, info.version);
  if (!loaded) return undefined;
  const config: AktoGuardrailsConfig = loaded;
  const log = logger.child({ component: 'akto-guardrails' });
  const client = createGuardrailsClient(config.client, env);
  const warns = new WarnMemory(config.warnMaxEntries, config.warnWindowMs);
  const m = metrics(registry);
  const windowS = Math.round(config.warnWindowMs / 1000);
  let failures = 0;
  let openUntil = 0;
  let lastErrorLog = -Infinity;
  let suppressed = 0;
  if (config.client.token === undefined) log.warn('AKTO_GUARDRAILS is on but AKTO_API_TOKEN is not set: Akto will refuse the checks unless it runs without authentication');
  log.info({ mode: config.mode, akto: config.client.baseUrl.origin, timeoutMs: config.client.timeoutMs, onError: config.onError, connector: config.client.connector }, 'Akto inline guardrails on');

  async function judge(ex: Exchange, phase: Stage, view: Exchange): Promise<Judged> {
    const started = performance.now();
    const elapsed = (): number => Math.round((performance.now() - started) * 100) / 100;
    // A body the proxy did not read (a content type it does not inspect) or an empty one: nothing to judge.
    if (view.requestBody.length === 0) return { error: { reason: 'no_body', detail: 'the request body was not read or is empty' }, ms: 0 };
    if (openUntil > Date.now()) return { error: { reason: 'circuit_open', detail: `${failures} checks in a row failed; not calling Akto for ${BREAKER_OPEN_MS} ms` }, ms: 0 };
    const built = buildAktoRecord(view, config.record);
    if (built.truncated > 0) return { error: { reason: 'too_large', detail: `a payload is over AKTO_GUARDRAILS_MAX_PAYLOAD_BYTES (${config.record.maxPayloadBytes})` }, ms: 0 };
    const answer = await client.check({ phase, body: JSON.stringify({ ...built.record, contextSource: 'AGENTIC' }), headers: correlationHeaders(ex) });
    const ms = elapsed();
    m.seconds.observe({ phase }, ms / 1000);
    if (answer.kind === 'error') {
      if (answer.reason === 'timeout' || answer.reason === 'network' || answer.reason === 'http_5xx') {
        if (++failures >= BREAKER_FAILURES) openUntil = Date.now() + BREAKER_OPEN_MS;
      }
      return { error: { reason: answer.reason, detail: answer.detail }, ms };
    }
    failures = 0;
    const read = readVerdict(answer.body, phase);
    if (!read.ok) return { error: { reason: 'unreadable', detail: read.problem }, ms };
    // Akto's gateway allowed without a verdict (its guardrails service failed): no verdict here either.
    if (read.verdict.failOpen) return { error: { reason: 'fail_open', detail: 'Akto answered failOpen: its guardrails service gave no verdict' }, ms };
    return { verdict: read.verdict, ms };
  }

  /** Applies a judged phase: records it, and returns the block the client gets, if any. */
  function settle(ex: Exchange, phase: Stage, judged: Judged, forwarded: Buffer, applyModified: ((payload: string) => ModifiedProblem) | 'already-sent'): BlockVerdict | undefined {
    const { verdict: v, ms } = judged;
    if (!v && judged.error!.reason === 'too_large' && phase === 'request') return tooLarge(ex, judged.error!.detail);
    if (!v) return failed(ex, phase, judged.error!.reason, judged.error!.detail, ms);
    if (!v.allowed) {
      if (v.behaviour === 'alert') record(ex, phase, v, ms, 'alert', 'alert');
      else if (v.behaviour === 'warn') {
        const fingerprint = warnFingerprint(ex, phase, forwarded);
        if (warns.acknowledge(fingerprint)) record(ex, phase, v, ms, 'flag', 'warn-resubmitted');
        else {
          warns.warn(fingerprint);
          record(ex, phase, v, ms, 'block', 'warn');
          return warnVerdict(phase, v, windowS);
        }
      } else if (v.behaviour === 'approval') {
        record(ex, phase, v, ms, 'block', 'approval');
        return approvalVerdict(phase, v);
      } else {
        record(ex, phase, v, ms, 'block', 'blocked');
        return blockVerdict(phase, v);
      }
    }
    if (v.modified) {
      if (applyModified === 'already-sent') {
        record(ex, phase, v, ms, 'flag', 'modified-not-applied');
        return undefined;
      }
      const problem = v.modifiedPayload === undefined ? 'Modified is true but ModifiedPayload is empty' : applyModified(v.modifiedPayload);
      if (problem) return failed(ex, phase, 'invalid_modified', `ModifiedPayload not used: ${problem}`, ms);
      record(ex, phase, v, ms, 'redact', 'modified');
      return undefined;
    }
    if (v.allowed) mark(ex, phase, { result: 'allowed', ms });
    return undefined;
  }

  function record(ex: Exchange, phase: Stage, v: AktoVerdict, ms: number, action: Finding['action'], result: CheckResult): void {
    const policy = policyName(v);
    const finding: Finding = {
      source: 'guardrail',
      ruleId: `akto:${policy}`,
      action,
      severity: v.severity ?? (action === 'block' ? 'high' : 'medium'),
      stage: phase,
      reason: `Akto policy "${policy}"${v.rule ? ` (${v.rule})` : ''}, behaviour ${v.behaviour}${result === 'warn-resubmitted' ? ', resubmitted after the warning' : ''}${v.reason ? `: ${v.reason}` : ''}`,
      detector: 'akto',
    };
    if (v.rule) finding.entity = v.rule;
    ex.findings.push(finding);
    mark(ex, phase, { result, ms, policy, rule: v.rule, behaviour: v.behaviour });
    const line = { reqId: ex.id, stage: phase, tier: 'akto', policy, rule: v.rule, behaviour: v.behaviour, severity: finding.severity, path: ex.path };
    if (action === 'block') log.warn(line, phase === 'request' ? 'Akto guardrail blocked the request' : 'Akto guardrail blocked the response');
    else log.info(line, `Akto guardrail verdict: ${result}`);
  }

  function failed(ex: Exchange, phase: Stage, reason: CheckErrorReason, detail: string, ms: number): BlockVerdict | undefined {
    m.errors.inc({ phase, reason });
    mark(ex, phase, { result: 'error', ms, error: reason });
    const tags = (ex.traceTags ??= {});
    tags['akto-error'] = reason;
    tags['akto-on-error'] = config.onError;
    const now = Date.now();
    if (now - lastErrorLog >= ERROR_LOG_INTERVAL_MS) {
      log.warn(
        { phase, reason, detail, onError: config.onError, suppressed: suppressed || undefined, reqId: ex.id },
        `no verdict from Akto (${reason}); AKTO_GUARDRAILS_ON_ERROR=${config.onError} ${config.onError === 'allow' ? 'lets the exchange through' : 'refuses it'}`,
      );
      lastErrorLog = now;
      suppressed = 0;
    } else suppressed++;
    if (config.onError === 'allow') return undefined;
    // Not a finding: an outage must not count as this identity's guardrail hits (probing detection).
    tags['decided-by'] = 'akto:unavailable';
    return {
      status: 502,
      type: 'guardrail_unavailable',
      code: 'akto_unavailable',
      message: `${phase === 'request' ? 'Request' : 'Response'} refused: Akto guardrails gave no verdict (${reason}) and AKTO_GUARDRAILS_ON_ERROR is block`,
      // An outage is not the request's fault: let SDKs retry it.
      headers: { 'x-should-retry': 'true' },
    };
  }

  /**
   * The client chooses the size of its request: padding it past what Akto can take must not be a way around
   * Akto, even when outages are let through. Refused like a body over MAX_REQUEST_SIZE.
   */
  function tooLarge(ex: Exchange, detail: string): BlockVerdict {
    m.errors.inc({ phase: 'request', reason: 'too_large' });
    mark(ex, 'request', { result: 'error', error: 'too_large' });
    const tags = (ex.traceTags ??= {});
    tags['akto-error'] = 'too_large';
    tags['decided-by'] = 'akto:too-large';
    return { status: 413, type: 'request_too_large', code: 'request_too_large', message: `request body is too large for Akto's guardrails: ${detail}` };
  }

  function mark(ex: Exchange, phase: Stage, note: PhaseNote): void {
    m.checks.inc({ phase, result: note.result });
    (ex.notes.akto ??= {})[phase] = note;
    const tags = (ex.traceTags ??= {});
    tags[`akto-${phase}`] = note.result;
    if (note.policy) tags['akto-policy'] = note.policy;
  }

  /** A bug here must not turn a fail-closed setup into a silent pass: it is one more reason without a verdict. */
  async function guarded(ex: Exchange, phase: Stage, run: () => Promise<BlockVerdict | undefined>): Promise<BlockVerdict | undefined> {
    try {
      return await run();
    } catch (err) {
      return failed(ex, phase, 'internal', err instanceof Error ? err.message : String(err), 0);
    }
  }

  const hooks: ExchangeHooks = {
    name: 'akto-guardrails',
    onRequest(ex) {
      if (ex.api === 'passthrough') return undefined;
      return guarded(ex, 'request', async () => {
        // Akto judges what the upstream would get: the body with the local redactions in it.
        const forwarded = serializeRequest(ex);
        const view = forwarded === ex.requestBody ? ex : { ...ex, requestBody: forwarded };
        return settle(ex, 'request', await judge(ex, 'request', view), forwarded, (payload) => applyModifiedRequest(ex, payload));
      });
    },
  };
  if (config.mode === 'both') {
    hooks.onResponse = (ex) => {
      const body = ex.response?.body;
      if (ex.api === 'passthrough' || !body || ex.output.length === 0) return undefined;
      return guarded(ex, 'response', async () => {
        const shown = serializeResponse(ex, body);
        const view = shown === body ? ex : { ...ex, response: { ...ex.response!, body: shown } };
        return settle(ex, 'response', await judge(ex, 'response', view), ex.requestBody, (payload) => applyModifiedResponse(ex, payload));
      });
    };
    hooks.openStream = (ex) => {
      if (ex.api === 'passthrough') return undefined;
      return {
        channel: () => PASS_THROUGH,
        finalCheck() {
          if (ex.output.every((s) => s.text === '')) return Promise.resolve(undefined);
          return guarded(ex, 'response', async () => {
            const view: Exchange = { ...ex, response: { status: ex.response?.status ?? 200, headers: { 'content-type': 'application/json' }, body: assembledResponse(ex) } };
            // The tokens are out: a ModifiedPayload can only be recorded, a block still ends the stream.
            return settle(ex, 'response', await judge(ex, 'response', view), ex.requestBody, 'already-sent');
          });
        },
      };
    };
  }
  return { hooks, close: () => client.close() };
}

function policyName(v: AktoVerdict): string {
  return v.policy ?? 'unnamed-policy';
}

function correlationHeaders(ex: Exchange): Record<string, string> {
  const out: Record<string, string> = { 'x-request-id': ex.id };
  for (const name of CORRELATION_HEADERS) {
    const v = headerValue(ex.requestHeaders, name);
    if (v !== undefined && /^[\x20-\x7e]{1,256}$/.test(v)) out[name] = v;
  }
  return out;
}

function reasonSuffix(v: AktoVerdict): string {
  return v.reason ? `: ${v.reason}` : '';
}

/** The same shape as a local rule's block: a non-retryable 400, the policy as the code. */
function blockVerdict(phase: Stage, v: AktoVerdict): BlockVerdict {
  const what = phase === 'request' ? 'Request' : 'Response';
  return { status: 400, type: 'guardrail_violation', code: `akto:${policyName(v)}`, message: `${what} blocked by Akto guardrail policy "${policyName(v)}"${reasonSuffix(v)}` };
}

function warnVerdict(phase: Stage, v: AktoVerdict, windowS: number): BlockVerdict {
  const then = phase === 'request' ? 'it will be let through' : 'its answer will be let through';
  return {
    status: 400,
    type: 'guardrail_warning',
    code: `akto:${policyName(v)}`,
    message: `${phase === 'request' ? 'Request' : 'Response'} held back with a warning by Akto guardrail policy "${policyName(v)}"${reasonSuffix(v)}. Send the identical request again within ${windowS}s and ${then}.`,
  };
}

function approvalVerdict(phase: Stage, v: AktoVerdict): BlockVerdict {
  return {
    status: 403,
    type: 'guardrail_approval_required',
    code: `akto:${policyName(v)}`,
    message: `${phase === 'request' ? 'Request' : 'Response'} needs human approval under Akto guardrail policy "${policyName(v)}"${reasonSuffix(v)}. This proxy has no approval flow, so it was refused.`,
  };
}

function metrics(registry: Registry) {
  return {
    checks: new Counter({
      name: 'akto_inline_checks_total',
      help: 'Akto inline guardrail checks (/api/http-proxy) by phase and what was made of the verdict.',
      labelNames: ['phase', 'result'],
      registers: [registry],
    }),
    errors: new Counter({
      name: 'akto_inline_errors_total',
      help: 'Akto inline checks that gave no verdict, by reason; AKTO_GUARDRAILS_ON_ERROR decided them.',
      labelNames: ['phase', 'reason'],
      registers: [registry],
    }),
    seconds: new Histogram({
      name: 'akto_inline_check_seconds',
      help: 'Time an Akto inline check added to the exchange.',
      labelNames: ['phase'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
  };
}
