/** Characters per token of the estimate: the usual English rule of thumb (no tokenizer on the hot path). */
export const CHARS_PER_TOKEN = 4;

/**
 * The one token estimate: tokens in a text of `chars` characters (UTF-16 code units), chars / 4 rounded up.
 * Size rules compare it with their `max_tokens`; limits charge it when the upstream reports no usage.
 */
export function tokensForChars(chars: number): number {
  return Math.ceil(chars / CHARS_PER_TOKEN);
}
