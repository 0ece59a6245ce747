import type { BlockVerdict } from './exchange';

/** What a channel filter lets through now. `block` ends the stream in the client's dialect. */
export interface StreamRelease {
  text: string;
  block?: BlockVerdict;
}

/**
 * Filters the text of one stream channel: a choice's content, or one (choice, tool call) pair's
 * argument fragments. push() returns what can no longer become part of a match; end() the rest.
 */
export interface ChannelFilter {
  push(delta: string): StreamRelease;
  end(): StreamRelease;
}

/**
 * What a stream channel carries: generated text, tool-call arguments or names, reasoning, a refusal, an audio
 * transcript, an in-stream error message, or the tokens of a logprobs/top-tokens list (one channel per rank),
 * which the client reads as text too.
 */
export type ChannelKind = 'content' | 'tool_arguments' | 'tool_name' | 'reasoning' | 'refusal' | 'transcript' | 'error' | 'token_list';

export interface StreamInspector {
  /** Called once per channel, the first time it carries text. */
  channel(key: string, kind: ChannelKind): ChannelFilter;
  /**
   * For checks that need the whole answer (a remote verdict): asked once the upstream's stream has ended
   * and ex.output holds the text released. While it runs the stream's terminal events (finish chunks,
   * usage, `[DONE]`, TGI's last event) are held back; a verdict ends the stream in the client's dialect
   * instead (finish_reason "content_filter" / an error event). Text already sent stays sent.
   */
  finalCheck?(): Promise<BlockVerdict | undefined>;
}

/**
 * Several hooks may filter the same stream: text released by the first goes into the second.
 * A block from any filter ends the channel.
 */
export function chainInspectors(inspectors: StreamInspector[]): StreamInspector | undefined {
  if (inspectors.length === 0) return undefined;
  if (inspectors.length === 1) return inspectors[0];
  const checks = inspectors.filter((i) => i.finalCheck);
  return {
    channel(key: string, kind: ChannelKind): ChannelFilter {
      const filters = inspectors.map((i) => i.channel(key, kind));
      return {
        push: (delta) => pass(filters, delta, false),
        end: () => pass(filters, '', true),
      };
    },
    ...(checks.length > 0
      ? {
          async finalCheck() {
            for (const i of checks) {
              const verdict = await i.finalCheck!();
              if (verdict) return verdict;
            }
            return undefined;
          },
        }
      : {}),
  };
}

function pass(filters: ChannelFilter[], delta: string, ending: boolean): StreamRelease {
  let text = delta;
  for (const f of filters) {
    const r = f.push(text);
    let released = r.text;
    if (r.block) return { text: released, block: r.block };
    if (ending) {
      const tail = f.end();
      released += tail.text;
      if (tail.block) return { text: released, block: tail.block };
    }
    text = released;
  }
  return { text };
}
