import { Alert, newAnomalyState, onCompleteSignals, onRequestSignals, type AnomalyState, type CompletionSignals } from '../../../proxy/limits/anomaly';
import { promptFingerprint } from '../../../proxy/limits/fingerprint';
import { compileLimitsPolicy, type AnomalyConfig } from '../../../proxy/limits/policy';
import { seededRandom } from '../../../common/random';

const cfg: AnomalyConfig = compileLimitsPolicy({}).anomalies;
const T0 = 1_700_000_000_000;

function normal(r: () => number, mean: number, sd: number): number {
  const u = Math.max(r(), 1e-12);
  return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
}

const ok = (over: Partial<CompletionSignals> = {}): CompletionSignals => ({ answered: true, completionTokens: 150, toolCalls: 0, guardrailHit: false, upstreamError: false, ...over });

/** Feeds one request (and its completion) and returns the rule ids that fired. */
function step(s: AnomalyState, now: number, prompt: { chars: number; text?: string }, done: CompletionSignals, c = cfg): string[] {
  const out: Alert[] = [];
  onRequestSignals(s, c, now, { promptChars: prompt.chars, fingerprint: prompt.text === undefined ? undefined : promptFingerprint(prompt.text) }, out);
  onCompleteSignals(s, c, now, done, out);
  return out.map((a) => a.ruleId);
}

let words = 0;
const fresh = (): string => `distinct prompt ${(words++).toString(26).replace(/[0-9]/g, (d) => 'qrstuvwxyz'[Number(d)])}`;

describe('request-rate spike', () => {
  test('fires on a burst after a steady minute-long rhythm, not during the rhythm', () => {
    const s = newAnomalyState(T0);
    const fired: string[] = [];
    let t = T0;
    for (let i = 0; i < 1800; i++, t += 1000) fired.push(...step(s, t, { chars: 500, text: fresh() }, ok()));
    expect(fired).toEqual([]);
    const burst: string[] = [];
    for (let i = 0; i < 60; i++, t += 20) burst.push(...step(s, t, { chars: 500, text: fresh() }, ok()));
    expect(burst).toEqual(['anomaly.spike.request_rate']); // once per interval, not once per request
  });

  test('sessions after idle hours are not spikes; a runaway burst within a session is', () => {
    const s = newAnomalyState(T0);
    const fired: string[] = [];
    let t = T0;
    for (let h = 0; h < 48; h++) {
      t = T0 + h * 3_600_000;
      for (let i = 0; i < 15; i++, t += 700) fired.push(...step(s, t, { chars: 500, text: fresh() }, ok()));
    }
    expect(fired).toEqual([]);
    for (let i = 0; i < 200; i++, t += 40) fired.push(...step(s, t, { chars: 500, text: fresh() }, ok()));
    expect(fired).toContain('anomaly.spike.request_rate');
  });

  test('not before the warm-up', () => {
    const s = newAnomalyState(T0);
    let t = T0;
    const fired: string[] = [];
    for (let i = 0; i < 100; i++, t += 10) fired.push(...step(s, t, { chars: 500, text: fresh() }, ok()));
    expect(fired).toEqual([]);
  });
});

describe('prompt-size spike', () => {
  test('fires on a prompt far above a jittery baseline, not on the jitter', () => {
    const r = seededRandom(1);
    const s = newAnomalyState(T0);
    const fired: string[] = [];
    let t = T0;
    for (let i = 0; i < 500; i++, t += 1000) fired.push(...step(s, t, { chars: Math.round(normal(r, 1200, 60)), text: fresh() }, ok()));
    expect(fired).toEqual([]);
    expect(step(s, t, { chars: 30_000, text: fresh() }, ok())).toEqual(['anomaly.spike.prompt_size']);
  });
});

describe('tool-call spike', () => {
  test('fires when one response fans out into many tool calls', () => {
    const r = seededRandom(2);
    const s = newAnomalyState(T0);
    const fired: string[] = [];
    let t = T0;
    for (let i = 0; i < 300; i++, t += 1000) fired.push(...step(s, t, { chars: 800, text: fresh() }, ok({ toolCalls: r() < 0.5 ? 1 : 0 })));
    expect(fired).toEqual([]);
    expect(step(s, t, { chars: 800, text: fresh() }, ok({ toolCalls: 15 }))).toEqual(['anomaly.spike.tool_calls']);
  });
});

describe('runaway loop', () => {
  test('fires from the Nth same or near-same prompt within the window', () => {
    const s = newAnomalyState(T0);
    const variants = ['Check the order status for #1001 now', 'check the order status for #1002 now', 'Check  the order\nstatus for #9 now', 'CHECK THE ORDER STATUS FOR #123456 NOW', 'Check the order status for #77 now'];
    const fired = variants.map((text, i) => step(s, T0 + i * 2000, { chars: text.length, text }, ok()));
    expect(fired.slice(0, 4).flat()).toEqual([]);
    expect(fired[4]).toEqual(['anomaly.loop']);
  });

  test('does not fire on distinct prompts, nor on one prompt repeated slower than the window', () => {
    const s = newAnomalyState(T0);
    const fired: string[] = [];
    for (let i = 0; i < 2000; i++) fired.push(...step(s, T0 + i * 500, { chars: 40, text: fresh() }, ok()));
    for (let i = 0; i < 20; i++) fired.push(...step(s, T0 + 2_000_000 + i * 60_000, { chars: 20, text: 'daily summary please' }, ok()));
    expect(fired).toEqual([]);
  });

  test('the fingerprint separates different prompts and folds digits, case and spacing', () => {
    expect(promptFingerprint('Retry job 17 at 10:31')).toBe(promptFingerprint('retry  job 2 at 9:05'));
    expect(promptFingerprint('delete the file')).not.toBe(promptFingerprint('delete the files'));
  });

  test('long prompts are hashed by their first and last kilobyte only', () => {
    const head = 'h'.repeat(1500);
    const tail = 't'.repeat(1500);
    expect(promptFingerprint(`${head}middle one${tail}`)).toBe(promptFingerprint(`${head}middle two${tail}`));
    expect(promptFingerprint(`${head}${tail}end one`)).not.toBe(promptFingerprint(`${head}${tail}end two`));
  });
});

describe('probing (repeated guardrail hits)', () => {
  test('fires on the 3rd guardrail hit within 5 minutes', () => {
    const s = newAnomalyState(T0);
    const fired = [0, 30_000, 60_000].map((dt) => step(s, T0 + dt, { chars: 100, text: fresh() }, ok({ guardrailHit: true })));
    expect(fired).toEqual([[], [], ['anomaly.probing']]);
  });

  test('does not fire on a hit every hour', () => {
    const s = newAnomalyState(T0);
    const fired: string[] = [];
    for (let h = 0; h < 48; h++) fired.push(...step(s, T0 + h * 3_600_000, { chars: 100, text: fresh() }, ok({ guardrailHit: true })));
    expect(fired).toEqual([]);
  });
});

describe('output-size jump', () => {
  test('fires on a completion many times the usual size', () => {
    const r = seededRandom(3);
    const s = newAnomalyState(T0);
    const fired: string[] = [];
    let t = T0;
    for (let i = 0; i < 500; i++, t += 1000) fired.push(...step(s, t, { chars: 800, text: fresh() }, ok({ completionTokens: Math.round(normal(r, 150, 30)) })));
    expect(fired).toEqual([]);
    expect(step(s, t, { chars: 800, text: fresh() }, ok({ completionTokens: 4000 }))).toEqual(['anomaly.output_jump']);
  });

  test('small completions never count, however large the ratio', () => {
    const s = newAnomalyState(T0);
    const fired: string[] = [];
    for (let i = 0; i < 100; i++) fired.push(...step(s, T0 + i * 1000, { chars: 800, text: fresh() }, ok({ completionTokens: 5 })));
    fired.push(...step(s, T0 + 100_000, { chars: 800, text: fresh() }, ok({ completionTokens: 150 })));
    expect(fired).toEqual([]);
  });
});

describe('upstream error burst', () => {
  test('fires once failures reach a quarter of the last minute\'s requests', () => {
    const s = newAnomalyState(T0);
    let t = T0;
    for (let i = 0; i < 50; i++, t += 2000) step(s, t, { chars: 100, text: fresh() }, ok());
    // The upstream starts failing every request; ~30 good ones remain in the sliding minute.
    const fired: string[][] = [];
    for (let i = 0; i < 15; i++, t += 1000) fired.push(step(s, t, { chars: 100, text: fresh() }, ok({ answered: false, upstreamError: true })));
    const first = fired.findIndex((f) => f.includes('anomaly.error_burst'));
    expect(first).toBeGreaterThanOrEqual(4); // never before the 5th error
    expect(first).toBeLessThanOrEqual(11);
    expect(fired.slice(first).every((f) => f.includes('anomaly.error_burst'))).toBe(true);
  });

  test('fires on the 5th error when the upstream fails from a cold start', () => {
    const s = newAnomalyState(T0);
    const fired = [0, 1, 2, 3, 4].map((i) => step(s, T0 + i * 100, { chars: 100, text: fresh() }, ok({ answered: false, upstreamError: true })));
    expect(fired).toEqual([[], [], [], [], ['anomaly.error_burst']]);
  });

  test('does not fire on scattered errors', () => {
    const r = seededRandom(4);
    const s = newAnomalyState(T0);
    const fired: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const err = r() < 0.02;
      fired.push(...step(s, T0 + i * 1000, { chars: 100, text: fresh() }, ok({ answered: !err, upstreamError: err })));
    }
    expect(fired).toEqual([]);
  });
});

describe('false alarms over a long steady series', () => {
  /**
   * A day of one agent's ordinary traffic: Poisson arrivals at 1 request/s, prompt sizes
   * N(1500, 300), completions N(200, 50) tokens, a tool call in 30% of answers, 0.5% upstream
   * errors, 0.1% guardrail hits, prompts all different. Every alert here is a false alarm.
   */
  test('stays below 1 per 10,000 requests with the default thresholds', () => {
    const r = seededRandom(42);
    const s = newAnomalyState(T0);
    const counts: Record<string, number> = {};
    const N = 86_400;
    let t = T0;
    for (let i = 0; i < N; i++) {
      t += Math.round(-Math.log(Math.max(r(), 1e-12)) * 1000);
      const err = r() < 0.005;
      const fired = step(
        s,
        t,
        { chars: Math.max(1, Math.round(normal(r, 1500, 300))), text: fresh() },
        ok({ answered: !err, upstreamError: err, completionTokens: Math.max(1, Math.round(normal(r, 200, 50))), toolCalls: r() < 0.3 ? 1 : 0, guardrailHit: r() < 0.001 }),
      );
      for (const id of fired) counts[id] = (counts[id] ?? 0) + 1;
    }
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    console.log(`false alarms over ${N} steady requests (${((t - T0) / 3_600_000).toFixed(1)} h): ${total}`, counts);
    expect(total / N).toBeLessThan(1e-4);
  });
});
