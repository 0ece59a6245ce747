import type { ChannelFilter, StreamInspector, StreamRelease } from '../../../proxy/protocols/stream-filter';
import type { BlockVerdict, Exchange } from '../../../proxy/protocols/exchange';
import { createStreamRewriter } from '../../../proxy/protocols/stream';
import { makeExchange } from './make-exchange';
import { OPENAI_CHAT, TGI_CHAT, TGI_CHAT_ERROR, TGI_COMPLETIONS, TGI_NATIVE, TGI_NATIVE_ERROR, TGI_TOOLS } from './sse-fixtures';

// ---- test filters -------------------------------------------------------------------------------

/** Holds everything until the channel ends (the worst case for re-emission), optionally rewriting a word. */
const holdAll = (from?: string, to?: string): ChannelFilter => {
  let held = '';
  return {
    push: (d) => {
      held += d;
      return { text: '' };
    },
    end: () => ({ text: from ? held.split(from).join(to) : held }),
  };
};

/** Releases all but the last `n` characters (a holdback tail). */
const holdTail = (n: number): ChannelFilter => {
  let held = '';
  return {
    push: (d) => {
      held += d;
      const cut = Math.max(0, held.length - n);
      const text = held.slice(0, cut);
      held = held.slice(cut);
      return { text };
    },
    end: () => ({ text: held }),
  };
};

const verdict: BlockVerdict = { status: 403, type: 'guardrail_violation', code: 'secret.aws', message: 'Blocked: secret in output' };

/** Blocks as soon as the text seen so far contains `word`, releasing what came before it. */
const blockOn = (word: string): ChannelFilter => {
  let seen = '';
  let sent = 0;
  return {
    push: (d): StreamRelease => {
      seen += d;
      const at = seen.indexOf(word);
      if (at >= 0) return { text: seen.slice(sent, at), block: verdict };
      const safe = Math.max(sent, seen.length - word.length + 1);
      const text = seen.slice(sent, safe);
      sent = safe;
      return { text };
    },
    end: () => ({ text: seen.slice(sent) }),
  };
};

function inspector(make: () => ChannelFilter, keys: string[] = []): StreamInspector {
  return {
    channel: (key, kind) => {
      keys.push(`${key}/${kind}`);
      return make();
    },
  };
}

// ---- helpers ------------------------------------------------------------------------------------

/** Feeds `sse` in chunks cut at the given byte offsets; returns what the client got. */
function run(ex: Exchange, sse: string | Buffer, ins?: StreamInspector, cuts: number[] = []): { out: Buffer; rw: ReturnType<typeof createStreamRewriter> } {
  const bytes = Buffer.isBuffer(sse) ? sse : Buffer.from(sse, 'utf8');
  const rw = createStreamRewriter(ex, ins);
  const parts: Buffer[] = [];
  let last = 0;
  for (const c of [...cuts, bytes.length]) {
    const r = rw.push(bytes.subarray(last, c));
    parts.push(Buffer.from(r));
    last = c;
  }
  parts.push(Buffer.from(rw.end()));
  return { out: Buffer.concat(parts), rw };
}

/** What an SSE client sees: the JSON (or raw) data of each event; comments dropped. */
function events(sse: string): unknown[] {
  return sse
    .replace(/\r\n?/g, '\n')
    .split('\n\n')
    .filter((e) => e.split('\n').some((l) => l.startsWith('data:')))
    .map((e) => {
      const data = e
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      try {
        return JSON.parse(data);
      } catch {
        return data;
      }
    });
}

/** Text per channel as a client would assemble it from chat/completions chunks or TGI tokens. */
function assemble(sse: string): Record<string, string> {
  const acc: Record<string, string> = {};
  const add = (k: string, t: unknown): void => {
    if (typeof t === 'string' && t !== '') acc[k] = (acc[k] ?? '') + t;
  };
  for (const ev of events(sse) as Record<string, any>[]) {  
    if (typeof ev !== 'object' || ev === null) continue;
    if (ev.token && !ev.token.special) add('content:0', ev.token.text);
    for (const c of ev.choices ?? []) {
      add(`content:${c.index}`, c.delta?.content ?? c.text);
      for (const tc of c.delta?.tool_calls ?? []) add(`tool:${c.index}:${tc.index}`, tc.function?.arguments);
    }
  }
  return acc;
}

const chatEx = (): Exchange => makeExchange('POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], stream: true });
const nativeEx = (): Exchange => makeExchange('POST', '/generate_stream', { inputs: 'Explain', parameters: { details: true } });
const outputs = (ex: Exchange): string[][] => ex.output.map((s) => [String(s.choice), s.kind, s.text]);

// ---- tests --------------------------------------------------------------------------------------

describe('stream without an inspector: bytes unchanged, output and usage collected', () => {
  test('TGI native: token text (special tokens skipped), usage from details', () => {
    const ex = nativeEx();
    const rw = createStreamRewriter(ex);
    const chunk = Buffer.from(TGI_NATIVE);
    expect(rw.push(chunk)).toBe(chunk);
    expect(rw.end()).toHaveLength(0);
    expect(outputs(ex)).toEqual([['0', 'completion', ' Deep learning is']]);
    expect(ex.usage).toEqual({ promptTokens: 6, completionTokens: 4, totalTokens: 10, source: 'stream' });
  });

  test('TGI chat with usage chunk, OpenAI dialect with UTF-8, completions with two prompts', () => {
    const a = chatEx();
    expect(run(a, TGI_CHAT).out.toString()).toBe(TGI_CHAT);
    expect(outputs(a)).toEqual([['0', 'completion', 'OK!']]);
    expect(a.usage).toEqual({ promptTokens: 39, completionTokens: 3, totalTokens: 42, source: 'stream' });

    const b = chatEx();
    expect(run(b, OPENAI_CHAT).out.toString()).toBe(OPENAI_CHAT);
    expect(outputs(b)).toEqual([['0', 'completion', 'Café olé 😀 done']]);

    const c = makeExchange('POST', '/v1/completions', { prompt: ['a', 'b'], stream: true });
    run(c, TGI_COMPLETIONS);
    expect(outputs(c)).toEqual([
      ['0', 'completion', ' Deep learning'],
      ['1', 'completion', ' Hi there'],
    ]);
    expect(c.usage?.completionTokens).toBe(3);
  });

  test('tool-call argument fragments form one channel per (choice, tool index)', () => {
    const ex = chatEx();
    run(ex, TGI_TOOLS);
    expect(outputs(ex)).toEqual([
      ['0', 'tool_name', 'get_current_weather'],
      ['0', 'tool_arguments', '{ "location":"Brooklyn, NY"}'],
    ]);
    expect(ex.toolCalls).toBe(1);
  });

  test('in-stream errors in both dialects are noted and passed on', () => {
    const a = nativeEx();
    expect(run(a, TGI_NATIVE_ERROR).out.toString()).toBe(TGI_NATIVE_ERROR);
    expect(a.notes.streamError).toMatch(/^Input validation error/);
    expect(outputs(a)).toEqual([['0', 'completion', ' Deep']]);
    const b = chatEx();
    run(b, TGI_CHAT_ERROR);
    expect(b.notes.streamError).toBe('Input validation error: too long');
  });
});

describe('SSE framing', () => {
  const fixtures = { TGI_NATIVE, TGI_CHAT, OPENAI_CHAT, TGI_TOOLS, TGI_COMPLETIONS, TGI_NATIVE_ERROR };

  test.each(Object.entries(fixtures))('%s split at every byte boundary gives the same output', (_name, sse) => {
    const mkEx = (): Exchange => (sse.includes('"token"') ? nativeEx() : chatEx());
    const whole = mkEx();
    run(whole, sse);
    const bytes = Buffer.from(sse);
    for (let k = 1; k < bytes.length; k++) {
      const ex = mkEx();
      const { out } = run(ex, bytes, undefined, [k]);
      expect(out.equals(bytes)).toBe(true);
      expect(ex.output).toEqual(whole.output);
      expect(ex.usage).toEqual(whole.usage);
    }
    // One byte at a time, through a hold-all inspector: same text reaches the client.
    const ex = mkEx();
    const { out } = run(ex, bytes, inspector(() => holdAll()), Array.from({ length: bytes.length - 1 }, (_, i) => i + 1));
    expect(assemble(out.toString())).toEqual(assemble(sse));
    expect(ex.output.map((s) => s.text)).toEqual(whole.output.map((s) => s.text));
  });

  test('\\r\\n and \\r line ends, no space after data:, comments, no trailing blank line', () => {
    const crlf = OPENAI_CHAT.replace(/\n/g, '\r\n');
    const cr = TGI_CHAT.replace(/\n/g, '\r');
    for (const [sse, text] of [
      [crlf, 'Café olé 😀 done'],
      [cr, 'OK!'],
    ]) {
      const bytes = Buffer.from(sse);
      for (let k = 1; k < bytes.length; k += 7) {
        const ex = chatEx();
        run(ex, bytes, undefined, [k]);
        expect(ex.output[0].text).toBe(text);
      }
    }
    const ex = nativeEx();
    run(ex, ':\n\n: ping\n\n' + TGI_NATIVE.replace(/\n\n$/, ''));
    expect(ex.output[0].text).toBe(' Deep learning is');
    expect(ex.usage?.completionTokens).toBe(4);
  });

  test('keep-alive comments reach the client through an inspector', () => {
    const { out } = run(chatEx(), ':\n\n' + TGI_CHAT, inspector(() => holdTail(0)));
    expect(out.toString().startsWith(':\n\n')).toBe(true);
    expect(out.toString()).toBe(':\n\n' + TGI_CHAT);
  });
});

describe('holdback re-emission', () => {
  test('pass-everything filter re-emits byte-identical events', () => {
    for (const sse of [TGI_NATIVE, TGI_CHAT, OPENAI_CHAT, TGI_TOOLS, TGI_COMPLETIONS]) {
      expect(run(chatEx(), sse, inspector(() => holdTail(0))).out.toString()).toBe(sse);
    }
  });

  test('hold-all (OpenAI dialect): deltas emptied, full text in the finish chunk, ids and roles kept', () => {
    const keys: string[] = [];
    const ex = chatEx();
    const out = run(ex, OPENAI_CHAT, inspector(() => holdAll(), keys)).out.toString();
    const evs = events(out) as Record<string, any>[];  
    expect(evs).toHaveLength(7);
    expect(evs.slice(1, 4).map((e) => e.choices[0].delta.content)).toEqual(['', '', '']);
    expect(evs[4].choices[0]).toEqual({ index: 0, delta: { content: 'Café olé 😀 done' }, logprobs: null, finish_reason: 'stop' });
    expect(evs[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
    for (const e of evs.slice(0, 6)) expect(e.id).toBe('chatcmpl-7f3a');
    expect(evs[6]).toBe('[DONE]');
    expect(out.startsWith('data: {')).toBe(true);
    expect(keys).toEqual(['content:0/content']);
    expect(outputs(ex)).toEqual([['0', 'completion', 'Café olé 😀 done']]);
  });

  test('held text is flushed before [DONE] when no finish chunk comes', () => {
    const sse = TGI_CHAT.split('\n\n').filter((e) => !e.includes('"finish_reason":"stop"') && !e.includes('"choices":[]')).join('\n\n');
    const out = run(chatEx(), sse, inspector(() => holdAll())).out.toString();
    const evs = events(out) as Record<string, any>[];  
    expect(evs.at(-1)).toBe('[DONE]');
    expect(evs.at(-2)).toMatchObject({ id: '', choices: [{ index: 0, delta: { content: 'OK!' }, finish_reason: null }], usage: null });
    expect(out.startsWith('data:{')).toBe(true);
  });

  test('TGI native hold-all: text emitted before the final event, generated_text kept', () => {
    const ex = nativeEx();
    const out = run(ex, TGI_NATIVE, inspector(() => holdAll())).out.toString();
    const evs = events(out) as Record<string, any>[];  
    expect(assemble(out)).toEqual({ 'content:0': ' Deep learning is' });
    expect(evs.at(-2)).toMatchObject({ token: { text: ' Deep learning is', special: false }, generated_text: null });
    expect(evs.at(-1)).toMatchObject({ token: { special: true }, generated_text: ' Deep learning is', details: { generated_tokens: 4 } });
    expect(out).not.toContain('[DONE]');
  });

  test('TGI compat with return_full_text: rewritten generated_text keeps the echoed prompt', () => {
    const ex = makeExchange('POST', '/', { inputs: 'Q:', stream: true });
    const sse = TGI_NATIVE.replace('"generated_text":" Deep', '"generated_text":"Q: Deep');
    const out = run(ex, sse, inspector(() => holdAll('learning', '[X]'))).out.toString();
    expect(assemble(out)).toEqual({ 'content:0': ' Deep [X] is' });
    expect((events(out).at(-1) as { generated_text: string }).generated_text).toBe('Q: Deep [X] is');
    expect(ex.output[0].text).toBe(' Deep [X] is');
  });

  test('two choices and tool channels keep order and lose nothing under a tail holdback', () => {
    const ex = makeExchange('POST', '/v1/completions', { prompt: ['a', 'b'], stream: true });
    const out = run(ex, TGI_COMPLETIONS, inspector(() => holdTail(4))).out.toString();
    expect(assemble(out)).toEqual({ 'content:0': ' Deep learning', 'content:1': ' Hi there' });
    const keys: string[] = [];
    const tools = chatEx();
    const toolOut = run(tools, TGI_TOOLS, inspector(() => holdTail(5), keys)).out.toString();
    expect(assemble(toolOut)).toEqual({ 'tool:0:0': '{ "location":"Brooklyn, NY"}' });
    expect(keys).toEqual(['tool_name:0:0#0/tool_name', 'tool:0:0/tool_arguments']); // the name is decided whole
    expect(events(toolOut).at(-1)).toBe('[DONE]');
  });

  test('upstream error event: held text is flushed before it', () => {
    const out = run(chatEx(), TGI_CHAT_ERROR, inspector(() => holdAll())).out.toString();
    const evs = events(out) as Record<string, any>[];  
    expect(evs.map((e) => (typeof e === 'string' ? e : e.error ? 'error' : e.choices[0].delta.content))).toEqual(['', 'OK', 'error', '[DONE]']);
  });
});

describe('blocks', () => {
  test('OpenAI dialect: released text, finish_reason content_filter, [DONE]; nothing after', () => {
    const ex = chatEx();
    const rw = createStreamRewriter(ex, inspector(() => blockOn('olé')));
    const bytes = Buffer.from(OPENAI_CHAT);
    const first = rw.push(bytes).toString();
    expect(rw.blocked).toEqual(verdict);
    expect(rw.push(bytes)).toBe('');
    expect(rw.end()).toBe('');
    const evs = events(first) as Record<string, any>[];  
    expect(evs.at(-1)).toBe('[DONE]');
    expect(evs.at(-2)).toMatchObject({ id: 'chatcmpl-7f3a', choices: [{ index: 0, finish_reason: 'content_filter' }] });
    expect(assemble(first)).toEqual({ 'content:0': 'Café ' });
    expect(first).not.toContain('olé');
    expect(outputs(ex)).toEqual([['0', 'completion', 'Café ']]);
  });

  test('TGI native: an error event with error_type generation (huggingface_hub GenerationError), no [DONE]', () => {
    const ex = nativeEx();
    const { out, rw } = run(ex, TGI_NATIVE, inspector(() => blockOn('learn')), [10, 150]);
    const text = out.toString();
    expect(rw.blocked).toEqual(verdict);
    expect(events(text).at(-1)).toEqual({ error: 'Blocked: secret in output', error_type: 'generation' });
    expect(text).toMatch(/^data:\{/);
    expect(text).not.toContain('learn');
    expect(text).not.toContain('[DONE]');
    expect(assemble(text)).toEqual({ 'content:0': ' Deep ' });
  });

  test('a block from end() at the finish chunk closes the stream the same way', () => {
    const blockAtEnd = (): ChannelFilter => ({ push: () => ({ text: '' }), end: () => ({ text: '', block: verdict }) });
    const { out, rw } = run(chatEx(), TGI_CHAT, inspector(blockAtEnd));
    expect(rw.blocked).toEqual(verdict);
    const evs = events(out.toString()) as Record<string, any>[];  
    expect(evs.slice(-2)).toEqual([expect.objectContaining({ choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'content_filter' }] }), '[DONE]']);
    expect(out.toString()).not.toContain('OK');
  });
});
