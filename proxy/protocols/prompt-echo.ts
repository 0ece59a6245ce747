import type { Exchange } from './exchange';
import { isObject } from '../../common/json';

/**
 * The prompt echoed at the start of a generated text, or ''. TGI's POST / and text-generation pipelines
 * default to return_full_text=true (/generate only when asked); OpenAI completions with `echo: true` start
 * each choice with its prompt (`choice` picks it from a prompt list). Output guardrails must not re-scan the
 * user's own input, so callers strip this prefix.
 */
export function echoedPrompt(ex: Exchange, generated: string, choice = 0): string {
  const json = ex.requestJson;
  // An agent's own API echoes nothing by protocol: all of its answer is read.
  if (!isObject(json) || ex.api === 'inbound') return '';
  if (ex.api === 'openai.completions') {
    if (json.echo !== true) return '';
    const prompts = Array.isArray(json.prompt) ? json.prompt : [json.prompt];
    const prompt = prompts.length > 0 ? prompts[choice % prompts.length] : undefined;
    return typeof prompt === 'string' && prompt !== '' && generated.startsWith(prompt) ? prompt : '';
  }
  if (typeof json.inputs !== 'string' || json.inputs === '') return '';
  const params = isObject(json.parameters) ? json.parameters : undefined;
  const fullTextDefault = ex.api === 'tgi.compat' || ex.api === 'hf.task';
  const fullText = typeof params?.return_full_text === 'boolean' ? params.return_full_text : fullTextDefault;
  return fullText && generated.startsWith(json.inputs) ? json.inputs : '';
}
