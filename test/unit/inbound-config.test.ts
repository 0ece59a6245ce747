import { loadProxyConfig } from '../../proxy/config';
import { findSelfTarget, ownPorts } from '../../proxy/self-target';

const base = { APP_URL: 'http://api.example.com', AKTO_PROXY_PORT: '8080', ADMIN_PORT: '9090' };

describe('the inbound listener configuration (INBOUND_PORT, INBOUND_HOST, INBOUND_APP_URL)', () => {
  test('off unless INBOUND_PORT is set; on, it listens on INBOUND_HOST (default 0.0.0.0) and sends no credential', () => {
    expect(loadProxyConfig(base).listeners.map((l) => l.direction)).toEqual(['egress']);
    const c = loadProxyConfig({ ...base, UPSTREAM_AUTHORIZATION: 'Bearer hf_x', INBOUND_PORT: '15080', INBOUND_APP_URL: 'http://127.0.0.1:8000' });
    expect(c.listeners.map((l) => [l.direction, l.port, l.host, l.upstream.href, l.authorization])).toEqual([
      ['egress', 8080, undefined, 'http://api.example.com/', 'Bearer hf_x'],
      ['inbound', 15080, '0.0.0.0', 'http://127.0.0.1:8000/', undefined],
    ]);
    expect(loadProxyConfig({ ...base, INBOUND_PORT: '15080', INBOUND_APP_URL: 'http://127.0.0.1:8000', INBOUND_HOST: '10.0.0.5' }).listeners[1].host).toBe('10.0.0.5');
  });

  test.each([
    [{ INBOUND_PORT: '15080' }, 'INBOUND_APP_URL: is required when INBOUND_PORT is set'],
    [{ INBOUND_APP_URL: 'http://127.0.0.1:8000' }, 'INBOUND_APP_URL: is set but INBOUND_PORT is not'],
    [{ INBOUND_HOST: '0.0.0.0' }, 'INBOUND_HOST: is set but INBOUND_PORT is not'],
    [{ INBOUND_PORT: '9090', INBOUND_APP_URL: 'http://127.0.0.1:8000' }, 'INBOUND_PORT: must differ from ADMIN_PORT (9090)'],
    [{ INBOUND_PORT: '8080', INBOUND_APP_URL: 'http://127.0.0.1:8000' }, 'INBOUND_PORT: must differ from the proxy port 8080 of APP_URL'],
    [{ INBOUND_PORT: '70000', INBOUND_APP_URL: 'http://127.0.0.1:8000' }, 'INBOUND_PORT: must be between 0 and 65535'],
    [{ INBOUND_PORT: '15080', INBOUND_APP_URL: 'ftp://127.0.0.1:8000' }, 'INBOUND_APP_URL:'],
  ])('%j is a configuration error naming the variable', (env, message) => {
    expect(() => loadProxyConfig({ ...base, ...env })).toThrow(message);
  });

  test('INBOUND_APP_URL pointing at the proxy itself is refused like any upstream', () => {
    const c = loadProxyConfig({ ...base, INBOUND_PORT: '15080', INBOUND_APP_URL: 'http://127.0.0.1:15080' });
    expect(findSelfTarget(c.listeners, { ports: ownPorts(c), hosts: new Set() })).toMatchObject({ listener: { urlVar: 'INBOUND_APP_URL' } });
    const ok = loadProxyConfig({ ...base, INBOUND_PORT: '15080', INBOUND_APP_URL: 'http://127.0.0.1:8000' });
    expect(findSelfTarget(ok.listeners, { ports: ownPorts(ok), hosts: new Set() })).toBeUndefined();
  });
});
