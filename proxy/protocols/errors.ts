import type { BlockVerdict, ErrorDialect, Stage } from './exchange';

/**
 * Response header naming a response-stage guardrail outcome on a complete (non-streamed) answer:
 * `content_filter; rule=<id>` when choices were withheld, `redacted` when text was replaced.
 */
export const VERDICT_HEADER = 'x-guardrail-verdict';

/**
 * TGI's error_type for a verdict. huggingface_hub raises a named exception only for TGI's own types
 * (validation → ValidationError, generation → GenerationError, overloaded → OverloadedError) and UnknownError
 * for anything else, so a refused request is `validation`, a refused answer `generation`, a limit `overloaded`.
 * Upstream failures (5xx) keep their own type.
 */
function tgiErrorType(verdict: BlockVerdict, stage: Stage): string {
  if (verdict.status === 429) return 'overloaded';
  if (verdict.status >= 500) return verdict.type;
  return stage === 'response' ? 'generation' : 'validation';
}

/**
 * The error object a client of this dialect reads best (OpenAI SDK: error.message; huggingface.js: error string).
 * With a stage, TGI errors carry the error_type huggingface_hub names (tgiErrorType); without, the verdict's own type.
 */
export function errorPayload(dialect: ErrorDialect, verdict: BlockVerdict, stage?: Stage): Record<string, unknown> {
  return dialect === 'openai'
    ? { error: { message: verdict.message, type: verdict.type, code: verdict.code, param: null } }
    : { error: verdict.message, error_type: stage ? tgiErrorType(verdict, stage) : verdict.type };
}

/**
 * A complete HTTP answer for a verdict in the client's API shape. Policy blocks carry
 * `x-should-retry: false` so the OpenAI SDK does not retry them; 429 (limits) leaves retrying to the client.
 */
export function renderError(dialect: ErrorDialect, verdict: BlockVerdict, stage: Stage = 'request'): { status: number; headers: Record<string, string>; body: Buffer } {
  const body = Buffer.from(JSON.stringify(errorPayload(dialect, verdict, stage)), 'utf8');
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(body.length),
  };
  if (verdict.status !== 429) headers['x-should-retry'] = 'false';
  if (verdict.headers) for (const [k, v] of Object.entries(verdict.headers)) headers[k.toLowerCase()] = v;
  headers['content-length'] = String(body.length);
  return { status: verdict.status, headers, body };
}
