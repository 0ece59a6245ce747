import type { Exchange } from './exchange';

type Obj = Record<string, unknown>;

/**
 * The non-streamed answer a finished stream amounts to, in its route's own shape, built from the text the
 * client was released (ex.output after the stream ended). What a remote check judges for a stream, so a
 * stream gets the verdict the same text would get sent whole.
 */
export function assembledResponse(ex: Exchange): Buffer {
  return Buffer.from(JSON.stringify(assembled(ex)), 'utf8');
}

function assembled(ex: Exchange): unknown {
  const byChoice = new Map<number, { content: string; tools: Map<number, string> }>();
  for (const s of ex.output) {
    const choice = s.choice ?? 0;
    let c = byChoice.get(choice);
    if (!c) byChoice.set(choice, (c = { content: '', tools: new Map() }));
    if (s.kind === 'tool_arguments') {
      const tool = typeof s.path[4] === 'number' ? s.path[4] : c.tools.size;
      c.tools.set(tool, (c.tools.get(tool) ?? '') + s.text);
    } else c.content += s.text;
  }
  const choices = [...byChoice.entries()].sort((a, b) => a[0] - b[0]);
  switch (ex.api) {
    case 'openai.chat':
      return {
        object: 'chat.completion',
        model: ex.model ?? '',
        choices: choices.map(([index, c]) => {
          const message: Obj = { role: 'assistant', content: c.content };
          if (c.tools.size > 0) {
            message.tool_calls = [...c.tools.entries()].map(([i, args]) => ({ index: i, type: 'function', function: { arguments: args } }));
          }
          return { index, message, finish_reason: 'stop' };
        }),
      };
    case 'openai.completions':
      return { object: 'text_completion', model: ex.model ?? '', choices: choices.map(([index, c]) => ({ index, text: c.content, finish_reason: 'stop' })) };
    case 'tgi.generate':
    case 'tgi.generate_stream':
      return { generated_text: choices[0]?.[1].content ?? '' };
    default:
      return choices.map(([, c]) => ({ generated_text: c.content }));
  }
}
