/**
 * "A stream gets the same verdict as the same text sent whole", for the agent's own streamed answers on the inbound
 * listener: every answer of the stream corpus, cut into one-character pieces, random pieces of 1–12 characters, and
 * in two around every match, is streamed by an agent as SSE JSON events ({delta, conversation_id}), NDJSON lines
 * (Ollama-style {response, done}) and plain-text SSE data, through the real inbound stream rewriter and the
 * guardrail hooks. The text the client assembles and the findings must equal those of the same answer sent whole
 * ({answer}); with a blocking rule the stream must be blocked by the same rule, having released only a prefix of the
 * answer with every match redacted.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { type Guardrails } from '../../../proxy/guardrails';
import { openGuardrails } from '../../support/guardrails';
import { newExchange, type BlockVerdict, type Exchange, type Finding } from '../../../proxy/protocols/exchange';
import { createInboundProtocol } from '../../../proxy/protocols/inbound';
import { SseParser } from '../../../proxy/protocols/sse';
import { createLogger } from '../../../common/logger';
import { createRegistry } from '../../../common/metrics';
import { CUSTOM_RESPONSE_RULES, loadStreamCorpus, randomPieces, splitAt } from '../../support/stream-dialects';

const corpus = loadStreamCorpus();
const protocol = createInboundProtocol(() => ({}));

const POLICIES = {
  redact: `version: 1\nguardrails:\n  rules:\n    - {id: pii, detector: pii, stage: response, action: redact}\n    - {id: secrets, detector: secrets, stage: response, action: redact}\n${CUSTOM_RESPONSE_RULES}`,
  block: `version: 1\nextends: default\n`,
  blockAsRedact: `version: 1\nguardrails:\n  rules:\n    - {id: pii-redact, detector: pii, stage: both, action: redact}\n    - {id: secrets-response-block, detector: secrets, stage: response, action: redact}\n`,
};
type PolicyName = keyof typeof POLICIES;

/** How an agent streams its answer, and how its client reads the stream back. */
interface AgentFormat {
  contentType: string;
  events(pieces: string[]): string[];
  read(out: string): { text: string; error: boolean };
}

function sseEvents(out: string): Array<{ event?: string; data: string }> {
  const events: Array<{ event?: string; data: string }> = [];
  const parser = new SseParser({ event: (ev) => events.push({ event: ev.event, data: ev.data }), comment: () => undefined });
  parser.push(Buffer.from(out));
  parser.end();
  return events;
}

const FORMATS: Record<string, AgentFormat> = {
  'SSE JSON events': {
    contentType: 'text/event-stream',
    events: (pieces) => [...pieces.map((p) => `event: token\ndata: ${JSON.stringify({ delta: p, conversation_id: 'conv-1' })}\n\n`), 'event: done\ndata: {"conversation_id":"conv-1"}\n\n'],
    read(out) {
      const events = sseEvents(out);
      const text = events.filter((e) => e.event === 'token').map((e) => (JSON.parse(e.data) as { delta: string }).delta).join('');
      return { text, error: events.some((e) => e.event === 'error') };
    },
  },
  'NDJSON lines': {
    contentType: 'application/x-ndjson',
    events: (pieces) => [...pieces.map((p) => `${JSON.stringify({ response: p, done: false })}\n`), '{"response":"","done":true}\n'],
    read(out) {
      const rows = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { response?: string; error?: unknown });
      return { text: rows.map((r) => r.response ?? '').join(''), error: rows.some((r) => r.error !== undefined) };
    },
  },
  'plain-text SSE data': {
    contentType: 'text/event-stream',
    events: (pieces) => [...pieces.map((p) => `data: ${p.split('\n').join('\ndata: ')}\n\n`), 'data: [DONE]\n\n'],
    read(out) {
      const events = sseEvents(out);
      return { text: events.filter((e) => e.event === undefined && e.data !== '[DONE]').map((e) => e.data).join(''), error: events.some((e) => e.event === 'error') };
    },
  },
};

interface Outcome {
  text: string;
  findings: Finding[];
  blocked?: string;
}

function exchange(): Exchange {
  const routed = protocol.route('POST', '/api/chat', '/');
  if (!routed.ok) throw new Error(routed.reason);
  const ex = newExchange({ id: 'parity', direction: 'inbound', method: 'POST', path: routed.path, api: routed.api, dialect: routed.dialect, upstream: new URL('http://127.0.0.1:8000') });
  protocol.attachBody(ex, Buffer.from('{"message":"go"}'), 'application/json');
  ex.findings = [];
  return ex;
}

function streamed(g: Guardrails, format: AgentFormat, pieces: string[]): Outcome {
  const ex = exchange();
  const rw = protocol.streamRewriter(ex, format.contentType, g.hooks.openStream!(ex));
  let out = '';
  for (const ev of format.events(pieces)) {
    out += rw.push(Buffer.from(ev)).toString();
    if (rw.blocked) break;
  }
  out += rw.end().toString();
  const read = format.read(out);
  expect(read.error).toBe(rw.blocked !== undefined);
  return { text: read.text, findings: ex.findings, blocked: rw.blocked?.code };
}

function whole(g: Guardrails, text: string): Outcome & { spans: Array<{ start: number; end: number }> } {
  const ex = exchange();
  protocol.parseResponse(ex, Buffer.from(JSON.stringify({ answer: text })), { 'content-type': 'application/json' });
  const verdict = g.hooks.onResponse!(ex) as BlockVerdict | undefined;
  const spans = (ex.notes.guardrails as { response?: { hits: Array<{ start: number; end: number }> } } | undefined)?.response?.hits ?? [];
  return { text: ex.output[0]?.text ?? '', findings: ex.findings, blocked: verdict?.code, spans };
}

function chunkings(text: string, spans: Array<{ start: number; end: number }>): Array<{ name: string; pieces: string[] }> {
  const points = new Set<number>();
  for (const { start, end } of spans) for (const p of [start - 1, start, start + 1, end - 1, end, end + 1]) points.add(p);
  return [
    { name: '1 char', pieces: [...text] },
    ...[1, 2].map((seed) => ({ name: `random 1-12 #${seed}`, pieces: randomPieces(text, seed * 7919 + text.length) })),
    ...[...points].filter((p) => p > 0 && p < text.length).map((p) => ({ name: `split at ${p}`, pieces: splitAt(text, [p]) })),
  ];
}

const findingKeys = (fs: Finding[]): string[] => fs.filter((f) => f.source === 'guardrail').map((f) => `${f.ruleId}|${f.entity ?? ''}|${f.action}|${f.reason}`);

describe('inbound streams: the same verdict as the same answer sent whole', () => {
  let dir: string;
  const guards = {} as Record<PolicyName, Guardrails>;
  const tally = { withFindings: 0, blocked: 0 };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'inbound-parity-'));
    const quiet = createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));
    for (const [name, yaml] of Object.entries(POLICIES)) {
      const file = join(dir, `${name}.yaml`);
      writeFileSync(file, yaml);
      guards[name as PolicyName] = await openGuardrails({ POLICY_FILE: file }, quiet, createRegistry(false));
    }
  });
  afterAll(() => {
    for (const g of Object.values(guards)) g.close();
    rmSync(dir, { recursive: true, force: true });
    expect(tally.withFindings).toBeGreaterThan(corpus.length);
    expect(tally.blocked).toBeGreaterThan(100);
  });

  describe.each(Object.keys(FORMATS))('%s', (name) => {
    const format = FORMATS[name];

    it('redacting policy: identical text and findings for every chunking', () => {
      for (const answer of corpus) {
        const expected = whole(guards.redact, answer.text);
        if (expected.findings.length > 0) tally.withFindings++;
        for (const { name: how, pieces } of chunkings(answer.text, expected.spans)) {
          const got = streamed(guards.redact, format, pieces);
          const where = `${answer.id} (${how})`;
          expect({ where, text: got.text }).toEqual({ where, text: expected.text });
          expect({ where, findings: findingKeys(got.findings) }).toEqual({ where, findings: findingKeys(expected.findings) });
        }
      }
    });

    it('blocking policy: same verdict, and nothing of a match released before the block', () => {
      for (const answer of corpus) {
        const expected = whole(guards.block, answer.text);
        const reference = whole(guards.blockAsRedact, answer.text);
        if (expected.blocked) tally.blocked++;
        for (const { name: how, pieces } of chunkings(answer.text, reference.spans)) {
          const got = streamed(guards.block, format, pieces);
          const where = `${answer.id} (${how})`;
          expect({ where, blocked: got.blocked }).toEqual({ where, blocked: expected.blocked });
          if (!expected.blocked) expect({ where, text: got.text }).toEqual({ where, text: expected.text });
          else expect({ where, prefix: reference.text.startsWith(got.text) }).toEqual({ where, prefix: true });
        }
      }
    });
  });
});
