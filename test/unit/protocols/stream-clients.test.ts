import http from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import type { ChannelFilter, StreamInspector } from '../../../proxy/protocols/stream-filter';
import { createStreamRewriter } from '../../../proxy/protocols/stream';
import { startStubUpstream, type StubUpstream } from '../../fixtures/stub-upstream';
import { makeExchange } from './make-exchange';

// What the real OpenAI SDK makes of re-emitted streams: a minimal relay (stub → rewriter → client).
const holdAll = (): ChannelFilter => {
  let held = '';
  return {
    push: (d) => {
      held += d;
      return { text: '' };
    },
    end: () => ({ text: held }),
  };
};
const blockOnSecret = (): ChannelFilter => {
  let seen = '';
  let sent = 0;
  return {
    push: (d) => {
      seen += d;
      if (seen.includes('AKIA')) return { text: '', block: { status: 403, type: 'guardrail_violation', code: 'secret', message: 'blocked' } };
      const text = seen.slice(sent, Math.max(sent, seen.length - 3));
      sent += text.length;
      return { text };
    },
    end: () => ({ text: seen.slice(sent) }),
  };
};
const FILTERS: Record<string, () => ChannelFilter> = { hold: holdAll, block: blockOnSecret };

let stub: StubUpstream;
let relay: http.Server;
let client: OpenAI;

beforeAll(async () => {
  stub = await startStubUpstream();
  relay = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      const ex = makeExchange('POST', req.url ?? '/', body);
      const make = FILTERS[String(req.headers['x-test-filter'])];
      const inspector: StreamInspector | undefined = make ? { channel: () => make() } : undefined;
      const { host: _host, ...headers } = req.headers;
      const up = http.request(stub.url + req.url, { method: 'POST', headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, { 'content-type': String(upRes.headers['content-type']) });
        const rw = createStreamRewriter(ex, inspector);
        upRes.on('data', (c: Buffer) => {
          if (res.writableEnded) return;
          res.write(rw.push(c));
          if (rw.blocked) {
            upRes.destroy();
            res.end();
          }
        });
        upRes.on('end', () => {
          if (!res.writableEnded) res.end(rw.end());
        });
      });
      up.end(body);
    });
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  client = new OpenAI({ baseURL: `http://127.0.0.1:${(relay.address() as AddressInfo).port}/v1/`, apiKey: 'sk-test', maxRetries: 0 });
});
afterAll(async () => {
  relay.closeAllConnections();
  await new Promise((r) => relay.close(r));
  await stub.close();
});

async function collect(headers: Record<string, string>): Promise<{ text: string; finish: (string | null)[] }> {
  const stream = await client.chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: 'x' }], stream: true }, { headers });
  let text = '';
  const finish: (string | null)[] = [];
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    if (chunk.choices[0]?.finish_reason) finish.push(chunk.choices[0].finish_reason);
  }
  return { text, finish };
}

describe('re-emitted streams through the OpenAI SDK', () => {
  test.each(['openai', 'tgi'])('hold-all filter: the client still gets all text in order (%s dialect)', async (dialect) => {
    // Header values are ASCII: the non-ASCII pieces travel as JSON \u escapes.
    const chunks = JSON.stringify(['Hel', 'lo, ', 'wor', 'ld ', '\u00e9\u00e8 ', '\ud83d\ude00']).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    const got = await collect({ 'x-test-filter': 'hold', 'x-stub-dialect': dialect, 'x-stub-chunks': chunks });
    expect(got.text).toBe('Hello, world éè 😀');
    expect(got.finish).toEqual(['stop']);
  });

  test('a block ends the stream with finish_reason content_filter and no leaked secret', async () => {
    const got = await collect({ 'x-test-filter': 'block', 'x-stub-chunks': JSON.stringify(['my key ', 'is AK', 'IAABCDEF', 'GHIJ']) });
    expect(got.finish).toEqual(['content_filter']);
    expect(got.text).not.toContain('AK');
    expect(got.text).toBe('my key is');
  });
});
