/**
 * The proof of "a streamed answer gets the same verdict as the same answer sent whole": every answer of the
 * corpus (secrets in every supported format with and without context words, PII, custom-rule matches, benign
 * prose and code), cut into chunks of one character, of random sizes 1–12, and in two at every position around
 * each match, goes through the real stream rewriter with the guardrail hooks in four dialects (OpenAI chat,
 * completions, tool-call arguments, TGI native). The text the client receives and the findings must equal those
 * of the same answer sent whole. With a blocking rule the stream must be blocked by the same rule, and what it
 * released must be a prefix of the answer with every match redacted (no character of a match got out).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { type Guardrails } from '../../../proxy/guardrails';
import { openGuardrails } from '../../support/guardrails';
import type { BlockVerdict, Exchange, Finding } from '../../../proxy/protocols/exchange';
import { parseResponse } from '../../../proxy/protocols/response';
import { createStreamRewriter } from '../../../proxy/protocols/stream';
import { createLogger } from '../../../common/logger';
import { createRegistry } from '../../../common/metrics';
import { parsedExchange } from '../../support/exchange';
import { CUSTOM_RESPONSE_RULES, dialectBody, dialectEvents, dialectRequest, loadStreamCorpus, randomPieces, readStream, splitAt, STREAM_DIALECTS, type StreamDialect } from '../../support/stream-dialects';

const corpus = loadStreamCorpus();

const POLICIES = {
  /** Everything redacts, names and addresses too: the client text must be identical. */
  redact: `version: 1\nguardrails:\n  rules:\n    - {id: pii, detector: pii, stage: response, action: redact}\n    - {id: names, detector: pii, entities: [PERSON, STREET_ADDRESS], stage: response, action: redact}\n    - {id: secrets, detector: secrets, stage: response, action: redact}\n${CUSTOM_RESPONSE_RULES}`,
  /** The default pack's response rules: PII redacted, secrets block. */
  block: `version: 1\nextends: default\n`,
  /** The block policy with its block turned into redaction: what a blocked stream may have released a prefix of. */
  blockAsRedact: `version: 1\nguardrails:\n  rules:\n    - {id: pii-redact, detector: pii, stage: both, action: redact}\n    - {id: secrets-response-block, detector: secrets, stage: response, action: redact}\n`,
};
type PolicyName = keyof typeof POLICIES;

interface Outcome {
  text: string;
  findings: Finding[];
  blocked?: string;
}

const quiet = () => createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));

function exchangeFor(d: StreamDialect, stream: boolean): Exchange {
  const { path, body } = dialectRequest(d, stream);
  return parsedExchange('POST', path, body);
}

function streamed(g: Guardrails, d: StreamDialect, pieces: string[]): Outcome {
  const ex = exchangeFor(d, true);
  const rw = createStreamRewriter(ex, g.hooks.openStream!(ex));
  let out = '';
  for (const ev of dialectEvents(d, pieces)) {
    out += rw.push(Buffer.from(ev)).toString();
    if (rw.blocked) break;
  }
  out += rw.end().toString();
  const read = readStream(d, out);
  if (!rw.blocked) expect(read.filtered).toBe(false);
  return { text: read.text, findings: ex.findings, blocked: rw.blocked?.code };
}

function whole(g: Guardrails, d: StreamDialect, text: string): Outcome {
  const ex = exchangeFor(d, false);
  parseResponse(ex, dialectBody(d, text), {});
  const verdict = g.hooks.onResponse!(ex) as BlockVerdict | undefined;
  const kind = d === 'tool' ? 'tool_arguments' : 'completion';
  return { text: ex.output.filter((s) => s.kind === kind).map((s) => s.text).join(''), findings: ex.findings, blocked: verdict?.code };
}

/** Two pieces split at every position from two before to two after each match boundary, and inside short matches. */
function boundaryChunkings(text: string, spans: Array<{ start: number; end: number }>): string[][] {
  const points = new Set<number>();
  for (const { start, end } of spans) {
    for (let p = start - 2; p <= end + 2; p++) if (end - start <= 64 || p <= start + 2 || p >= end - 2 || (p - start) % 7 === 0) points.add(p);
  }
  return [...points].filter((p) => p > 0 && p < text.length).map((p) => splitAt(text, [p]));
}

function chunkings(text: string, spans: Array<{ start: number; end: number }>): Array<{ name: string; pieces: string[] }> {
  return [
    { name: '1 char', pieces: [...text] },
    ...[1, 2, 3].map((seed) => ({ name: `random 1-12 #${seed}`, pieces: randomPieces(text, seed * 7919 + text.length) })),
    ...boundaryChunkings(text, spans).map((pieces) => ({ name: `split at ${pieces[0].length}`, pieces })),
  ];
}

function spansOf(ex: Exchange): Array<{ start: number; end: number }> {
  const record = (ex.notes.guardrails as { response?: { hits: Array<{ start: number; end: number }> } } | undefined)?.response;
  return record?.hits ?? [];
}

function matchSpans(g: Guardrails, d: StreamDialect, text: string): Array<{ start: number; end: number }> {
  const ex = exchangeFor(d, false);
  parseResponse(ex, dialectBody(d, text), {});
  g.hooks.onResponse!(ex);
  return spansOf(ex);
}

const findingKeys = (fs: Finding[]): string[] => fs.map((f) => `${f.ruleId}|${f.entity ?? ''}|${f.action}|${f.reason}`);

describe('a streamed answer gets the same verdict as the same answer sent whole', () => {
  let dir: string;
  const guards = {} as Record<PolicyName, Guardrails>;
  const tally = { answers: corpus.length, runs: 0, withFindings: 0, blocked: 0 };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'parity-'));
    for (const [name, yaml] of Object.entries(POLICIES)) {
      const file = join(dir, `${name}.yaml`);
      writeFileSync(file, yaml);
      guards[name as PolicyName] = await openGuardrails({ POLICY_FILE: file }, quiet(), createRegistry(false));
    }
  });
  afterAll(() => {
    for (const g of Object.values(guards)) g.close();
    rmSync(dir, { recursive: true, force: true });
    // The corpus must exercise the guardrails, not only pass prose through.
    expect(tally.withFindings).toBeGreaterThan(corpus.length);
    expect(tally.blocked).toBeGreaterThan(100);
  });

  it('has a corpus of at least 300 answers in every family', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(300);
    for (const family of ['secret', 'pii', 'custom', 'prose', 'code']) expect(corpus.filter((a) => a.family === family).length).toBeGreaterThan(20);
  });

  describe.each(STREAM_DIALECTS)('%s', (dialect) => {
    it('redacting policy: identical text and findings for every chunking', () => {
      const g = guards.redact;
      for (const answer of corpus) {
        const expected = whole(g, dialect, answer.text);
        if (expected.findings.length > 0) tally.withFindings++;
        for (const { name, pieces } of chunkings(answer.text, matchSpans(g, dialect, answer.text))) {
          tally.runs++;
          const got = streamed(g, dialect, pieces);
          const where = `${answer.id} (${name})`;
          expect({ where, text: got.text }).toEqual({ where, text: expected.text });
          expect({ where, findings: findingKeys(got.findings) }).toEqual({ where, findings: findingKeys(expected.findings) });
        }
      }
    });

    it('blocking policy: same verdict, and nothing of a match released before the block', () => {
      for (const answer of corpus) {
        const expected = whole(guards.block, dialect, answer.text);
        const reference = whole(guards.blockAsRedact, dialect, answer.text).text;
        if (expected.blocked) tally.blocked++;
        for (const { name, pieces } of chunkings(answer.text, matchSpans(guards.blockAsRedact, dialect, answer.text))) {
          tally.runs++;
          const got = streamed(guards.block, dialect, pieces);
          const where = `${answer.id} (${name})`;
          expect({ where, blocked: got.blocked }).toEqual({ where, blocked: expected.blocked });
          if (!expected.blocked) {
            expect({ where, text: got.text }).toEqual({ where, text: expected.text });
            expect({ where, findings: findingKeys(got.findings) }).toEqual({ where, findings: findingKeys(expected.findings) });
          } else {
            expect({ where, prefix: reference.startsWith(got.text) }).toEqual({ where, prefix: true });
          }
        }
      }
    });
  });
});
