import type { Exchange } from '../protocols/exchange';
import { tokensForChars } from '../protocols/tokens';

/**
 * Token arithmetic for admission. Before the call only an estimate exists: the prompt's tokens
 * (tokensForChars) plus the completion the client asked for (max_tokens / max_new_tokens), or
 * `defaultCompletion` when it asked for none. After the call the real usage (response body, TGI
 * headers, the stream's usage event) replaces it; without any, the output text is counted by the
 * same estimate.
 */

export function promptChars(ex: Exchange): number {
  let n = 0;
  for (const s of ex.input) n += s.text.length;
  // Unparsed or passthrough bodies still cost something upstream.
  return n > 0 || ex.input.length > 0 ? n : ex.requestBody.length;
}

export function outputChars(ex: Exchange): number {
  let n = 0;
  // Token lists repeat the text of another segment.
  for (const s of ex.output) if (s.kind !== 'token_list') n += s.text.length;
  return n;
}

/** What admission charges before the call: the prompt's estimated tokens, and those plus the completion budget. */
export function admissionEstimate(ex: Exchange, defaultCompletion: number): { prompt: number; total: number } {
  const prompt = tokensForChars(promptChars(ex));
  const completion = ex.maxTokens !== undefined && ex.maxTokens >= 0 ? ex.maxTokens : defaultCompletion;
  return { prompt, total: prompt + completion };
}

/** Completion tokens the upstream reported, else the output counted. */
export function completionTokens(ex: Exchange): number {
  const u = ex.usage;
  if (u?.completionTokens !== undefined) return u.completionTokens;
  if (u?.totalTokens !== undefined && u.promptTokens !== undefined) return Math.max(0, u.totalTokens - u.promptTokens);
  return tokensForChars(outputChars(ex));
}

/** Tokens to charge for a finished exchange whose prompt was estimated at `promptEstimate`. */
export function actualTokens(ex: Exchange, promptEstimate: number): number {
  const u = ex.usage;
  if (u?.totalTokens !== undefined) return u.totalTokens;
  const prompt = u?.promptTokens ?? promptEstimate;
  return prompt + completionTokens(ex);
}
