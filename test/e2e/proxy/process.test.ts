import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startAktoReceiver } from '../../fixtures/akto-receiver';
import { startStubUpstream, type StubUpstream } from '../../fixtures/stub-upstream';
import { waitFor } from '../../support/wait';

/** These run the built entry point (`npm run build` first; `make test` does). */
const MAIN = path.resolve(__dirname, '../../../dist/proxy/main.js');

interface Run {
  child: ChildProcess;
  lines: Array<Record<string, unknown>>;
  raw: () => string;
  exit: Promise<number | null>;
}

function run(env: Record<string, string>): Run {
  const child = spawn(process.execPath, [MAIN], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const lines: Array<Record<string, unknown>> = [];
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    const parts = out.split('\n');
    out = parts.pop()!;
    for (const p of parts) if (p.trim()) lines.push(JSON.parse(p));
  });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, lines, raw: () => err, exit };
}


describe('the proxy process', () => {
  test.each([
    [{}, 'APP_URL'],
    [{ APP_URL: 'ftp://example' }, 'APP_URL'],
    [{ APP_URL: 'not a url' }, 'APP_URL'],
    [{ APP_URL: 'http://127.0.0.1:1', AKTO_PROXY_PORT: 'eighty' }, 'AKTO_PROXY_PORT'],
    [{ APP_URL: 'http://127.0.0.1:1', LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ APP_URL: 'http://127.0.0.1:1', REQUEST_TIMEOUT: '-3' }, 'REQUEST_TIMEOUT'],
    // Forwarding to itself, in any spelling of this machine and to any of its own ports.
    [{ APP_URL: 'http://127.1:18080', AKTO_PROXY_PORT: '18080' }, 'APP_URL'],
    [{ APP_URL: 'http://0.0.0.0:19090/v1', AKTO_PROXY_PORT: '0', ADMIN_PORT: '19090' }, 'APP_URL'],
    [{ APP_URL: 'http://localhost.', AKTO_PROXY_PORT: '80' }, 'APP_URL'],
    [{ APP_URL: 'http://[::ffff:7f00:1]:18080', AKTO_PROXY_PORT: '18080' }, 'APP_URL'],
    [{ APP_URL: 'http://10.9.8.7:18080', POD_IP: '10.9.8.7', AKTO_PROXY_PORT: '18080' }, 'APP_URL'],
    [{ UPSTREAMS: '18080=APP_URL,18081=APP_URL_1', APP_URL: 'http://up.example', APP_URL_1: 'http://2130706433:18080' }, 'APP_URL_1'],
  ])('a bad setting %j stops it with exit code 2 and one line naming %s', async (env, key) => {
    const r = run(env as Record<string, string>);
    expect(await r.exit).toBe(2);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatchObject({ level: 'fatal', key });
    expect(String(r.lines[0].msg)).toContain(key);
    expect(JSON.stringify(r.lines[0])).not.toContain('stack');
    expect(r.raw()).toBe('');
  });

  test.each([
    ['AKTO_PROXY_PORT', (port: number) => ({ AKTO_PROXY_PORT: String(port), ADMIN_PORT: '0' })],
    ['ADMIN_PORT', (port: number) => ({ AKTO_PROXY_PORT: '0', ADMIN_PORT: String(port) })],
    ['UPSTREAMS', (port: number) => ({ UPSTREAMS: `${port}=APP_URL`, ADMIN_PORT: '0' })],
  ])('a port already in use stops it with exit code 2 and one line naming %s, no stack trace', async (key, ports) => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const r = run({ APP_URL: 'http://127.0.0.1:1', LISTEN_HOST: '127.0.0.1', ADMIN_HOST: '127.0.0.1', TRACE_FILE: '/dev/null', ...ports(port) });
      expect(await r.exit).toBe(2);
      const fatal = r.lines.filter((l) => l.level === 'fatal');
      expect(fatal).toHaveLength(1);
      expect(fatal[0]).toMatchObject({ key });
      expect(String(fatal[0].msg)).toContain(`port ${port} is already in use`);
      expect(JSON.stringify(r.lines)).not.toContain('stack');
      expect(r.raw()).toBe('');
    } finally {
      blocker.close();
    }
  });

  describe('running', () => {
    let stub: StubUpstream;
    beforeAll(async () => {
      stub = await startStubUpstream();
    });
    afterAll(() => stub.close());

    test('configured secrets reflected by Akto or echoed by the upstream never reach stdout, traces or the dead-letter file', async () => {
      const AKTO_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.process-secret.sig';
      const HF = 'hf_processSecret_0123456789';
      const akto = await startAktoReceiver({ token: AKTO_TOKEN });
      akto.behave({ status: 400, reflectHeaders: true });
      const dir = mkdtempSync(path.join(tmpdir(), 'proc-secrets-'));
      try {
        const r = run({
          APP_URL: stub.url, AKTO_PROXY_PORT: '0', ADMIN_PORT: '0', ADMIN_HOST: '127.0.0.1', LISTEN_HOST: '127.0.0.1', LOG_LEVEL: 'debug',
          AKTO_API_BASE_URL: akto.url, AKTO_API_TOKEN: AKTO_TOKEN, AKTO_BATCH_INTERVAL_MS: '20', SPOOL_DIR: dir, UPSTREAM_AUTHORIZATION: `Bearer ${HF}`,
          // No guardrail redacts the pasted token: only the scrubber stands between it and the output.
          POLICY_PACK: 'off',
        });
        await waitFor(() => r.lines.some((l) => l.msg === 'akto-agent-proxy listening'));
        const url = (r.lines.find((l) => l.msg === 'akto-agent-proxy listening') as { listeners: Array<{ url: string }> }).listeners[0].url;
        // The agent pastes the credential into its prompt; the stub echoes it back.
        const res = await fetch(`${url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'tgi', messages: [{ role: 'user', content: `why does ${HF} fail?` }] }),
        });
        expect(res.status).toBe(200);
        await res.text();
        await waitFor(() => r.lines.some((l) => String(l.msg).includes('Akto rejected a trace batch')), 10_000);
        r.child.kill('SIGTERM');
        expect(await r.exit).toBe(0);
        const stdout = JSON.stringify(r.lines);
        expect(stdout).toContain('actionErrors');
        for (const secret of [AKTO_TOKEN, HF]) expect(stdout).not.toContain(secret);
        const dead = readFileSync(path.join(dir, 'dead-letter.jsonl'), 'utf8');
        expect(dead).toContain('<redacted>');
        for (const secret of [AKTO_TOKEN, HF]) expect(dead).not.toContain(secret);
        expect(stub.requests.some((q) => q.headers.authorization === `Bearer ${HF}` && q.body.toString().includes(HF))).toBe(true);
        expect(dead).toContain('why does <redacted> fail?');
      } finally {
        await akto.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test('SIGTERM lets an in-flight request finish, then exits 0', async () => {
      const r = run({ APP_URL: stub.url, AKTO_PROXY_PORT: '0', ADMIN_PORT: '0', ADMIN_HOST: '127.0.0.1', LISTEN_HOST: '127.0.0.1', TRACE_FILE: '/dev/null' });
      await waitFor(() => r.lines.some((l) => l.msg === 'akto-agent-proxy listening'));
      const listening = r.lines.find((l) => l.msg === 'akto-agent-proxy listening') as { listeners: Array<{ url: string }> };
      const url = listening.listeners[0].url;
      const pending = fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-stub-delay-ms': '600' },
        body: JSON.stringify({ model: 'tgi', messages: [{ role: 'user', content: 'slow one' }] }),
      });
      await waitFor(() => stub.requests.some((q) => q.json?.messages?.[0]?.content === 'slow one'));
      r.child.kill('SIGTERM');
      const res = await pending;
      expect(res.status).toBe(200);
      expect(((await res.json()) as any).choices[0].message.content).toBe('Echo: slow one');
      expect(await r.exit).toBe(0);
      expect(r.lines.some((l) => l.msg === 'stopped')).toBe(true);
    });
  });
});
