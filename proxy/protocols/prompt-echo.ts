import type { Exchange } from './exchange';

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * The prompt TGI (or a text-generation pipeline) echoed at the start of `generated_text`, or ''.
 * POST / and pipelines default to return_full_text=true; /generate only when asked. Output
 * guardrails must not re-scan the user's own input, so callers strip this prefix.
 */
export function echoedPrompt(ex: Exchange, generated: string): string {
  const json = ex.requestJson;
  if (!isObject(json) || typeof json.inputs !== 'string' || json.inputs === '') return '';
  const params = isObject(json.parameters) ? json.parameters : undefined;
  const fullTextDefault = ex.api === 'tgi.compat' || ex.api === 'hf.task';
  const fullText = typeof params?.return_full_text === 'boolean' ? params.return_full_text : fullTextDefault;
  return fullText && generated.startsWith(json.inputs) ? json.inputs : '';
}
