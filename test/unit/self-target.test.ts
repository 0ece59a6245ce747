import { hostname, networkInterfaces } from 'node:os';
import { loadProxyConfig } from '../../proxy/config';
import { ConfigError } from '../../common/env';
import { findSelfTarget, ownPorts, refuseSelfTarget } from '../../proxy/self-target';

const config = (env: Record<string, string>) => loadProxyConfig({ AKTO_PROXY_PORT: '8080', ADMIN_PORT: '9090', ...env });

describe('the proxy never forwards to itself', () => {
  const own = (env: Record<string, string>, hosts: string[] = []) => {
    const c = config(env);
    return { listeners: c.listeners, own: { ports: ownPorts(c), hosts: new Set(hosts) } };
  };

  test.each([
    'http://127.0.0.1:8080', 'http://127.1:8080/v1', 'http://0x7f.1:8080', 'http://2130706433:8080', 'http://0.0.0.0:8080', 'http://0:8080',
    'http://localhost:8080', 'http://LOCALHOST.:8080', 'http://agent.localhost:8080', 'http://[::1]:8080', 'http://[::]:8080',
    'http://[::ffff:127.0.0.1]:8080', 'http://user:pw@127.0.0.1:8080', 'http://127.0.0.1:9090/metrics',
  ])('%s is this proxy', (url) => {
    const { listeners, own: o } = own({ APP_URL: url });
    expect(findSelfTarget(listeners, o)?.listener.urlVar).toBe('APP_URL');
  });

  test.each([
    'http://127.0.0.1:8081', 'http://localhost:3000', 'http://10.1.2.3:8080', 'http://api.example.com:8080', 'https://127.0.0.1.example.com:8080',
    'http://127.0.0.1@api.example.com:8080',
  ])('%s is another server', (url) => {
    const { listeners, own: o } = own({ APP_URL: url });
    expect(findSelfTarget(listeners, o)).toBeUndefined();
  });

  test('the pod address, the pod name and names resolving to this machine count as this machine', () => {
    const pod = own({ APP_URL: 'http://10.244.1.7:8080' }, ['10.244.1.7', 'agent-7d9f']);
    expect(findSelfTarget(pod.listeners, pod.own)?.reason).toMatch(/port 8080 is its own proxy listener \(APP_URL\)/);
    const byName = own({ APP_URL: 'http://Agent-7d9f.:8080' }, ['agent-7d9f']);
    expect(findSelfTarget(byName.listeners, byName.own)).toBeDefined();
    const dns = own({ APP_URL: 'http://loop.example.com:9090' });
    const found = findSelfTarget(dns.listeners, dns.own, new Map([['loop.example.com', ['93.184.216.34', '127.0.0.2']]]));
    expect(found?.reason).toMatch(/admin port \(ADMIN_PORT\).*loop\.example\.com resolves to 127\.0\.0\.2/);
    expect(findSelfTarget(dns.listeners, dns.own, new Map([['loop.example.com', ['93.184.216.34']]]))).toBeUndefined();
  });

  test('with several listeners, the one pointing at a sibling listener is named', () => {
    const { listeners, own: o } = own({ UPSTREAMS: '8080=APP_URL,8081=APP_URL_1', APP_URL: 'http://up.example', APP_URL_1: 'http://[::1]:8080' });
    expect(findSelfTarget(listeners, o)?.listener.urlVar).toBe('APP_URL_1');
  });

  test('at start, the real hostname and interface addresses of this machine are known', async () => {
    const address = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    const urls = [`http://${hostname()}:8080`, ...(address ? [`http://${address}:9090`] : [])];
    for (const url of urls) {
      const err = await refuseSelfTarget(config({ APP_URL: url }), {}).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).key).toBe('APP_URL');
    }
    await expect(refuseSelfTarget(config({ APP_URL: 'http://upstream.invalid:8080' }), {})).resolves.toBeUndefined();
    await expect(refuseSelfTarget(config({ APP_URL: 'http://127.0.0.1:8081' }), {})).resolves.toBeUndefined();
  });
});
