import { InferenceClient } from '@huggingface/inference';
import OpenAI from 'openai';
import { loadProxyConfig } from '../../../proxy/config';
import { ConfigError } from '../../../common/env';
import { startStubUpstream, type StubUpstream } from '../../fixtures/stub-upstream';
import { freePort } from '../../support/ports';
import { startTestProxy } from '../../support/proxy-harness';

const HF_TOKEN = 'Bearer hf_onlyForTheHfEndpoint_0123456789';
const OPENAI_KEY = 'Bearer sk-onlyForTheOpenAiEndpoint-abcdef';

function configError(env: Record<string, string>): ConfigError {
  try {
    loadProxyConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error(`no ConfigError for ${JSON.stringify(env)}`);
}

/** UPSTREAMS, as the webhook sets it for a pod that talks to two endpoints: one listener per URL. */
describe('several upstreams', () => {
  let a: StubUpstream;
  let b: StubUpstream;
  beforeAll(async () => {
    [a, b] = await Promise.all([startStubUpstream(), startStubUpstream()]);
  });
  afterAll(async () => {
    await a.close();
    await b.close();
  });
  beforeEach(() => {
    a.requests.length = 0;
    b.requests.length = 0;
  });

  test('each port forwards to the URL held in the variable it names', async () => {
    const [pa, pb] = [await freePort(), await freePort()];
    const proxy = await startTestProxy(a.url, { APP_URL_1: `${b.url}/v1`, UPSTREAMS: `${pa}=APP_URL,${pb}=APP_URL_1` });
    try {
      expect(proxy.urls).toEqual([`http://127.0.0.1:${pa}`, `http://127.0.0.1:${pb}`]);
      const body = JSON.stringify({ model: 'tgi', messages: [{ role: 'user', content: 'which one?' }] });
      const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body };
      expect((await fetch(`${proxy.urls[0]}/v1/chat/completions`, init)).status).toBe(200);
      expect((await fetch(`${proxy.urls[1]}/chat/completions`, init)).status).toBe(200);
      expect(a.requests.map((r) => r.path)).toEqual(['/v1/chat/completions']);
      expect(b.requests.map((r) => r.path)).toEqual(['/v1/chat/completions']);
    } finally {
      await proxy.close();
    }
  });

  test('each upstream sees only its own credential, whatever the client sends', async () => {
    const [pa, pb] = [await freePort(), await freePort()];
    const proxy = await startTestProxy(a.url, {
      UPSTREAMS: `${pa}=APP_URL,${pb}=APP_URL_1`,
      APP_URL_1: `${b.url}/v1`,
      UPSTREAM_AUTHORIZATION: HF_TOKEN,
      UPSTREAM_AUTHORIZATION_1: OPENAI_KEY,
    });
    try {
      // The agent's own clients, each pointed at its listener with a placeholder key.
      const hf = new InferenceClient('hf_placeholder', { endpointUrl: proxy.urls[0] });
      await hf.textGeneration({ inputs: 'to the HF endpoint', parameters: { max_new_tokens: 4 } });
      const openai = new OpenAI({ baseURL: proxy.urls[1], apiKey: 'sk-placeholder', maxRetries: 0 });
      await openai.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'to the OpenAI endpoint' }] });
      await openai.embeddings.create({ model: 'emb', input: 'also to the OpenAI endpoint' });

      expect(a.requests.length).toBe(1);
      expect(b.requests.length).toBe(2);
      expect(a.requests.map((r) => r.headers.authorization)).toEqual([HF_TOKEN]);
      expect(b.requests.map((r) => r.headers.authorization)).toEqual([OPENAI_KEY, OPENAI_KEY]);
      const seenByA = JSON.stringify(a.requests.map((r) => [r.headers, r.body.toString()]));
      const seenByB = JSON.stringify(b.requests.map((r) => [r.headers, r.body.toString()]));
      expect(seenByA).not.toContain('sk-onlyForTheOpenAiEndpoint');
      expect(seenByB).not.toContain('hf_onlyForTheHfEndpoint');
      expect(JSON.stringify(proxy.logs)).not.toMatch(/onlyForThe/);
    } finally {
      await proxy.close();
    }
  });

  test('a listener without a credential of its own passes the client Authorization, never another listener’s', async () => {
    const [pa, pb] = [await freePort(), await freePort()];
    const proxy = await startTestProxy(a.url, { UPSTREAMS: `${pa}=APP_URL,${pb}=APP_URL_1`, APP_URL_1: b.url, UPSTREAM_AUTHORIZATION: HF_TOKEN });
    try {
      const openai = new OpenAI({ baseURL: `${proxy.urls[1]}/v1`, apiKey: 'sk-the-apps-own-key', maxRetries: 0 });
      await openai.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'hello' }] });
      expect(b.requests.map((r) => r.headers.authorization)).toEqual(['Bearer sk-the-apps-own-key']);
      expect(a.requests).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  test.each([
    [{ UPSTREAMS: '8080=APP_URL_9' }, 'APP_URL_9'],
    [{ UPSTREAMS: '8080:APP_URL', APP_URL: 'http://x' }, 'UPSTREAMS'],
    [{ UPSTREAMS: '8080=APP_URL,8080=APP_URL', APP_URL: 'http://x' }, 'UPSTREAMS'],
    [{ UPSTREAMS: '8080=APP_URL_1', APP_URL_1: 'gopher://x' }, 'APP_URL_1'],
    // Two listeners reading one URL variable would share its credential.
    [{ UPSTREAMS: '8080=APP_URL,8081=APP_URL', APP_URL: 'http://x' }, 'UPSTREAMS'],
    // A URL variable outside the naming rule has no credential variable of its own.
    [{ UPSTREAMS: '8080=OPENAI_URL', OPENAI_URL: 'http://x' }, 'UPSTREAMS'],
    [{ UPSTREAMS: '8080=APP_URL,8081=UPSTREAM', APP_URL: 'http://x', UPSTREAM: 'http://y' }, 'UPSTREAMS'],
  ])('a bad UPSTREAMS setting %j names %s', (env, key) => {
    expect(configError(env as Record<string, string>).key).toBe(key);
  });

  test.each([
    // The webhook's old bug: the first endpoint's token configured while only other listeners exist.
    [{ UPSTREAMS: '8080=APP_URL_1,8081=APP_URL_2', APP_URL_1: 'https://api.openai.com/v1', APP_URL_2: 'https://x.endpoints.huggingface.cloud', UPSTREAM_AUTHORIZATION: 'Bearer hf_x' }, 'UPSTREAM_AUTHORIZATION'],
    [{ UPSTREAMS: '8080=APP_URL,8081=APP_URL_1', APP_URL: 'http://x', APP_URL_1: 'http://y', UPSTREAM_AUTHORIZATION_2: 'Bearer z' }, 'UPSTREAM_AUTHORIZATION_2'],
    [{ APP_URL: 'http://x', UPSTREAM_AUTHORIZATION_1: 'Bearer orphan' }, 'UPSTREAM_AUTHORIZATION_1'],
    [{ APP_URL: 'http://x', UPSTREAM_AUTHORIZATION_: 'Bearer orphan' }, 'UPSTREAM_AUTHORIZATION_'],
    [{ APP_URL: 'http://x', UPSTREAM_AUTHORIZATION: 'Bearer a\r\nX-Injected: 1' }, 'UPSTREAM_AUTHORIZATION'],
  ])('a credential without exactly one owner stops the start: %j names %s', (env, key) => {
    const err = configError(env as Record<string, string>);
    expect(err.key).toBe(key);
    expect(err.message).not.toMatch(/hf_x|Bearer z|orphan|Injected/);
  });

  test('the credential of each listener follows its URL variable', () => {
    const config = loadProxyConfig({
      UPSTREAMS: '8080=APP_URL_7,8081=APP_URL',
      APP_URL: 'http://a',
      APP_URL_7: 'http://b',
      UPSTREAM_AUTHORIZATION: 'for-a',
      UPSTREAM_AUTHORIZATION_7: 'for-b',
      UPSTREAM_AUTHORIZATION_8: '',
    });
    expect(config.listeners.map((l) => [l.port, l.upstream.host, l.authorizationVar, l.authorization])).toEqual([
      [8080, 'b', 'UPSTREAM_AUTHORIZATION_7', 'for-b'],
      [8081, 'a', 'UPSTREAM_AUTHORIZATION', 'for-a'],
    ]);
  });
});
