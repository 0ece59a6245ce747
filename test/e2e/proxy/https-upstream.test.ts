import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { TestCa } from '../../integration/harness';
import { startTestProxy } from '../../support/proxy-harness';

/** A private endpoint (PrivateLink, corporate CA): trusted through NODE_EXTRA_CA_CERTS, refused without it. */
describe('an HTTPS upstream signed by a private CA', () => {
  let server: https.Server;
  let upstream: string;
  let dir: string;
  let caFile: string;

  beforeAll(async () => {
    const ca = new TestCa('akto-private-endpoint-ca');
    const pem = ca.serving('endpoint.internal');
    server = https.createServer({ cert: pem.cert, key: pem.key }, (req, res) => {
      req.resume().on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'c1', object: 'chat.completion', created: 1, model: 'tgi', choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: `tls ok ${req.url}` } }] }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    upstream = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'akto-ca-'));
    caFile = path.join(dir, 'ca.pem');
    fs.writeFileSync(caFile, ca.cert);
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const ask = (base: string) =>
    new OpenAI({ baseURL: `${base}/v1`, apiKey: 'k', maxRetries: 0 }).chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: 'hi' }] });

  test('is trusted when its CA is in NODE_EXTRA_CA_CERTS', async () => {
    const proxy = await startTestProxy(upstream, { NODE_EXTRA_CA_CERTS: caFile });
    try {
      const r = await ask(proxy.url);
      expect(r.choices[0].message.content).toBe('tls ok /v1/chat/completions');
    } finally {
      await proxy.close();
    }
  });

  test('is refused (502, certificate error named) when the CA is unknown', async () => {
    const proxy = await startTestProxy(upstream, { NODE_EXTRA_CA_CERTS: path.join(dir, 'absent.pem'), SSL_CERT_FILE: path.join(dir, 'absent.pem') });
    try {
      const err = await ask(proxy.url).then(() => undefined, (e: { status: number; message: string }) => e);
      expect(err?.status).toBe(502);
      expect(err?.message).toMatch(/unreachable \(.*(CERT|SIGNATURE|ISSUER)/);
    } finally {
      await proxy.close();
    }
  });
});
