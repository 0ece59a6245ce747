import { loadProxyConfig } from '../../../proxy/config';
import { ConfigError } from '../../../proxy/config-env';
import { startStubUpstream, type StubUpstream } from '../../fixtures/stub-upstream';
import { freePort } from '../../support/ports';
import { startTestProxy } from '../../support/proxy-harness';

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

  test('each port forwards to the URL held in the variable it names', async () => {
    const [pa, pb] = [await freePort(), await freePort()];
    const proxy = await startTestProxy(a.url, { UPSTREAM_2_URL: `${b.url}/v1`, UPSTREAMS: `${pa}=APP_URL,${pb}=UPSTREAM_2_URL` });
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

  test.each([
    [{ UPSTREAMS: '8080=MISSING' }, 'MISSING'],
    [{ UPSTREAMS: '8080:APP_URL', APP_URL: 'http://x' }, 'UPSTREAMS'],
    [{ UPSTREAMS: '8080=APP_URL,8080=APP_URL', APP_URL: 'http://x' }, 'UPSTREAMS'],
    [{ UPSTREAMS: '8080=U', U: 'gopher://x' }, 'U'],
  ])('a bad UPSTREAMS setting %j names %s', (env, key) => {
    expect(() => loadProxyConfig(env as Record<string, string>)).toThrow(ConfigError);
    try {
      loadProxyConfig(env as Record<string, string>);
    } catch (e) {
      expect((e as ConfigError).key).toBe(key);
    }
  });
});
