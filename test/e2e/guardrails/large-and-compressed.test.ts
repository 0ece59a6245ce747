/**
 * Two ways an answer used to skip the response rules: a body compressed by the upstream, and a body over
 * MAX_RESPONSE_SIZE. Both are now read as the client reads them, through the real proxy and the OpenAI client.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startStubUpstream, type StubUpstream } from '../../fixtures/stub-upstream';
import { startGuarded, useGuardedStub, type GuardedProxy } from '../../support/guarded-proxy';
import { dialectEvents } from '../../support/stream-dialects';
import { waitFor } from '../../support/wait';

const AWS_KEY = 'AKIAZ7Q3LMN4PRS5TUVW';
const EMAIL = 'alice.smith@example.com';
const messages = [{ role: 'user' as const, content: 'go' }];
const openai = (base: string) => new OpenAI({ baseURL: `${base}/v1`, apiKey: 'sk-test', maxRetries: 2 });

describe('compressed upstream answers are decoded and inspected', () => {
  const t = useGuardedStub();

  it.each(['gzip', 'deflate', 'br'])('%s: a secret is withheld, an e-mail redacted, the client gets identity bytes', async (encoding) => {
    const secret = await openai(t.g.proxy.url)
      .chat.completions.create({ model: 'tgi', messages }, { headers: { 'x-stub-encoding': encoding, 'x-stub-reply': `key ${AWS_KEY}` } })
      .withResponse();
    expect(secret.response.headers.get('content-encoding')).toBeNull();
    expect(secret.data.choices[0]).toMatchObject({ message: { content: '' }, finish_reason: 'content_filter' });
    const mail = await openai(t.g.proxy.url).chat.completions.create({ model: 'tgi', messages }, { headers: { 'x-stub-encoding': encoding, 'x-stub-reply': `mail ${EMAIL}` } });
    expect(mail.choices[0].message.content).toBe('mail <EMAIL_1>');
  });

  it('a compressed event stream is cut before the key', async () => {
    const sse = dialectEvents('chat', ['The key: ', 'AKIAZ7', 'Q3LMN4PRS5TUVW', ' ok']).join('');
    const stream = await openai(t.g.proxy.url).chat.completions.create(
      { model: 'tgi', messages, stream: true },
      { headers: { 'x-stub-encoding': 'gzip', 'x-stub-sse': JSON.stringify(sse) } },
    );
    let text = '';
    let finish: string | null = null;
    for await (const c of stream) {
      text += c.choices[0]?.delta?.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe('The key: ');
    expect(finish).toBe('content_filter');
  });

  it('an encoding the proxy cannot read is refused on an inspected route, not passed', async () => {
    const before = t.stub.requests.length;
    const res = await fetch(`${t.g.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-stub-encoding': 'zstd', 'x-stub-reply': `key ${AWS_KEY}` },
      body: JSON.stringify({ model: 'tgi', messages }),
    });
    expect(res.status).toBe(502);
    expect(res.headers.get('x-should-retry')).toBe('false');
    expect(await res.text()).toContain('response_unreadable');
    expect(t.stub.requests.length).toBe(before + 1);
  });
});

describe('answers over MAX_RESPONSE_SIZE', () => {
  let stub: StubUpstream;
  let dir: string;
  const proxies: Record<string, GuardedProxy> = {};
  const big = 'All quiet on the western front. '.repeat(200); // ~6.4 KB, over the 2 KB limit below

  beforeAll(async () => {
    stub = await startStubUpstream();
    dir = mkdtempSync(join(tmpdir(), 'oversize-'));
    for (const action of ['scan', 'block', 'allow']) {
      const file = join(dir, `${action}.yaml`);
      writeFileSync(file, `version: 1\nextends: default\nguardrails:\n  on_oversize: ${action}\n`);
      proxies[action] = await startGuarded(stub.url, { POLICY_FILE: file, MAX_RESPONSE_SIZE: '2048' });
    }
  });
  afterAll(async () => {
    for (const p of Object.values(proxies)) await p.close();
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('scan (default): redacted and cut as it streams through, still valid JSON for the client', async () => {
    const mail = await openai(proxies.scan.proxy.url).chat.completions.create({ model: 'tgi', messages }, { headers: { 'x-stub-reply': `${big}Write to ${EMAIL}.` } });
    expect(mail.choices[0].message.content).toBe(`${big}Write to <EMAIL_1>.`);
    const before = proxies.scan.completed.length;
    const secret = await openai(proxies.scan.proxy.url).chat.completions.create({ model: 'tgi', messages }, { headers: { 'x-stub-reply': `${big}The key is ${AWS_KEY}.` } });
    expect(secret.choices[0].finish_reason).toBe('content_filter');
    const content = secret.choices[0].message.content ?? '';
    // What had been released when the key was found stays; nothing of the key does.
    expect(`${big}The key is `.startsWith(content)).toBe(true);
    expect(content).not.toContain('AKIA');
    await waitFor(() => proxies.scan.completed.length > before, 5000, 'exchange completed');
    const ex = proxies.scan.completed[proxies.scan.completed.length - 1];
    expect(ex.outcome).toBe('blocked');
    expect(ex.notes.proxy).toMatchObject({ responseInspected: 'streamed' });
  });

  it('block: 502 response_too_large, not retried by the client', async () => {
    const before = stub.requests.length;
    let error: unknown;
    try {
      await openai(proxies.block.proxy.url).chat.completions.create({ model: 'tgi', messages }, { headers: { 'x-stub-reply': big } });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe('response_too_large');
    expect(stub.requests.length).toBe(before + 1);
  });

  it('allow: passed unchecked, and the trace says so', async () => {
    const before = proxies.allow.completed.length;
    const res = await openai(proxies.allow.proxy.url).chat.completions.create({ model: 'tgi', messages }, { headers: { 'x-stub-reply': `${big}${AWS_KEY}` } });
    expect(res.choices[0].message.content).toContain(AWS_KEY);
    await waitFor(() => proxies.allow.completed.length > before, 5000, 'exchange completed');
    expect(proxies.allow.completed[proxies.allow.completed.length - 1].notes.proxy).toMatchObject({ responseInspected: false });
  });
});
