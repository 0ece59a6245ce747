import type { Exchange, Segment } from '../../../proxy/protocols/exchange';
import { chatExchange } from '../../support/exchange';
import { compilePolicy, type CompiledPolicy } from '../../../proxy/guardrails/compile';
import { builtinDetectors, type Detector } from '../../../proxy/guardrails/detectors';
import { loadPolicyText } from '../../../proxy/policy/load';
import { PACKS } from '../../../proxy/policy/packs';
import type { PackName } from '../../../proxy/policy/types';
import { RedactionContext } from '../../../proxy/guardrails/redact';

export function segment(text: string, role = 'user', extra: Partial<Segment> = {}): Segment {
  return { role, kind: role === 'assistant' ? 'completion' : 'message', trusted: role !== 'tool', path: ['messages', 0, 'content'], text, ...extra };
}

export function exchange(input: Segment[], extra: Partial<Exchange> = {}): Exchange {
  return chatExchange({ model: 'meta-llama/Llama-3.1-8B-Instruct', input, ...extra });
}

export function policyFrom(yaml: string, detectors: Record<string, Detector> = builtinDetectors()): CompiledPolicy {
  return compilePolicy(loadPolicyText(yaml, 'test.yaml'), detectors);
}

export function pack(name: PackName): CompiledPolicy {
  return compilePolicy(PACKS[name], builtinDetectors());
}

export const ctx = (): RedactionContext => new RedactionContext(Buffer.from('test-key'));

/**
 * A detector for engine tests: finds a literal token (in the normalized text, reported on the original) and holds
 * back any tail that is a prefix of it. `calls` counts scans.
 */
export function literalDetector(id: string, entity: string, token: string, score = 0.9): Detector & { calls: number } {
  const d = {
    id,
    entities: [entity],
    calls: 0,
    scan(text: import('../../../proxy/guardrails/normalize').NormalizedText, opts?: import('../../../proxy/guardrails/detectors').ScanOptions) {
      d.calls++;
      const out = [];
      if (opts?.threshold !== undefined && score < opts.threshold) return [];
      for (let i = text.text.indexOf(token); i >= 0; i = text.text.indexOf(token, i + token.length)) {
        out.push({ detector: id, entity, start: text.toOriginal(i), end: text.toOriginalEnd(i + token.length), score });
      }
      return out;
    },
    pendingTail(text: string) {
      for (let n = Math.min(token.length - 1, text.length); n > 0; n--) if (token.startsWith(text.slice(text.length - n))) return n;
      return 0;
    },
    lookback: 0,
  };
  return d;
}

export function throwingDetector(id: string, entity: string): Detector {
  return {
    id,
    entities: [entity],
    scan() {
      throw new TypeError('boom on "secret value"');
    },
    pendingTail: () => 0,
    lookback: 0,
  };
}
