/**
 * Gateway mode serves agents over the network: the proxied port speaks HTTPS with a certificate from
 * files (a cert-manager or provided Secret), picks up a rotated certificate without a restart, and
 * refuses to start on a half-configured or unreadable pair.
 */
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { loadProxyConfig } from '../../../proxy/config';
import { startStubUpstream, type StubUpstream } from '../../fixtures/stub-upstream';
import { TestCa } from '../../integration/harness';
import { startTestProxy } from '../../support/proxy-harness';
import { waitFor } from '../../support/wait';

/** One chat completion over HTTPS, trusting only `ca`; resolves with the reply and the served certificate's serial. */
function chat(url: string, ca: string, content: string): Promise<{ status: number; body: any; serial: string }> {
  const u = new URL(`${url}/v1/chat/completions`);
  return new Promise((resolve, reject) => {
    const req = https.request(
      { hostname: u.hostname, port: u.port, path: u.pathname, method: 'POST', ca, servername: 'akto-proxy.agents.svc', agent: false, headers: { 'content-type': 'application/json' } },
      (res) => {
        const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), serial }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ model: 'tgi', messages: [{ role: 'user', content }] }));
  });
}

describe('HTTPS on the proxied port (LISTEN_TLS_CERT_FILE / LISTEN_TLS_KEY_FILE)', () => {
  let stub: StubUpstream;
  let dir: string;
  const ca = new TestCa('akto-gateway-test-ca');
  const write = (pem: { cert: string; key: string }) => {
    fs.writeFileSync(path.join(dir, 'tls.crt'), pem.cert);
    fs.writeFileSync(path.join(dir, 'tls.key'), pem.key);
  };
  beforeAll(async () => {
    stub = await startStubUpstream();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aap-listen-tls-'));
  });
  afterAll(async () => {
    await stub.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('serves HTTPS with the mounted certificate, and a rotated one without a restart', async () => {
    write(ca.serving('akto-proxy', ['akto-proxy.agents.svc']));
    const proxy = await startTestProxy(stub.url, { LISTEN_TLS_CERT_FILE: path.join(dir, 'tls.crt'), LISTEN_TLS_KEY_FILE: path.join(dir, 'tls.key'), LISTEN_TLS_RELOAD_MS: '50' });
    try {
      expect(proxy.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const first = await chat(proxy.url, ca.cert, 'over tls');
      expect(first.status).toBe(200);
      expect(first.body.choices[0].message.content).toBe('Echo: over tls');

      // cert-manager renews: a new key pair lands in the mounted files.
      write(ca.serving('akto-proxy', ['akto-proxy.agents.svc']));
      await waitFor(() => proxy.logs.some((l) => l.msg === 'listener certificate reloaded'), 5000, 'reload');
      const second = await chat(proxy.url, ca.cert, 'after rotation');
      expect(second.status).toBe(200);
      expect(second.serial).not.toBe(first.serial);

      // A half-written pair (new cert, old key) is not served: the last good pair stays.
      fs.writeFileSync(path.join(dir, 'tls.crt'), ca.serving('akto-proxy', ['akto-proxy.agents.svc']).cert);
      await new Promise((r) => setTimeout(r, 200));
      expect((await chat(proxy.url, ca.cert, 'still up')).serial).toBe(second.serial);
    } finally {
      await proxy.close();
    }
  });

  test('plain HTTP clients get no answer from the HTTPS port, and a client that does not trust the CA is refused', async () => {
    write(ca.serving('akto-proxy', ['akto-proxy.agents.svc']));
    const proxy = await startTestProxy(stub.url, { LISTEN_TLS_CERT_FILE: path.join(dir, 'tls.crt'), LISTEN_TLS_KEY_FILE: path.join(dir, 'tls.key') });
    try {
      const other = new TestCa('someone-else');
      await expect(chat(proxy.url, other.cert, 'x')).rejects.toThrow(/certificate/);
      const plain = await fetch(proxy.url.replace('https:', 'http:') + '/v1/models').then(
        (r) => r.status,
        () => 'refused',
      );
      expect(plain).not.toBe(200);
    } finally {
      await proxy.close();
    }
  });

  test.each([
    [{ LISTEN_TLS_CERT_FILE: '/nonexistent/tls.crt' }, 'LISTEN_TLS_KEY_FILE'],
    [{ LISTEN_TLS_KEY_FILE: '/nonexistent/tls.key' }, 'LISTEN_TLS_CERT_FILE'],
  ])('%j alone is a ConfigError naming %s', (env, key) => {
    expect(() => loadProxyConfig({ APP_URL: 'http://127.0.0.1:1', ...env })).toThrow(expect.objectContaining({ name: 'ConfigError', key }));
  });

  test('an unreadable file or a key that does not fit the certificate stops the start, naming the variable', async () => {
    await expect(startTestProxy(stub.url, { LISTEN_TLS_CERT_FILE: path.join(dir, 'missing.crt'), LISTEN_TLS_KEY_FILE: path.join(dir, 'tls.key') })).rejects.toMatchObject({ name: 'ConfigError', key: 'LISTEN_TLS_CERT_FILE' });
    const a = ca.serving('a');
    const b = ca.serving('b');
    fs.writeFileSync(path.join(dir, 'mismatch.crt'), a.cert);
    fs.writeFileSync(path.join(dir, 'mismatch.key'), b.key);
    await expect(startTestProxy(stub.url, { LISTEN_TLS_CERT_FILE: path.join(dir, 'mismatch.crt'), LISTEN_TLS_KEY_FILE: path.join(dir, 'mismatch.key') })).rejects.toMatchObject({ name: 'ConfigError', key: 'LISTEN_TLS_KEY_FILE' });
  });
});
