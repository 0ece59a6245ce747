import type { ChannelFilter, ChannelKind, StreamInspector, StreamRelease } from './hooks';

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
