import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { AktoReceiver, ReceivedRecord, startAktoReceiver } from '../../fixtures/akto-receiver';
import { startStubUpstream, type StubUpstream } from '../../fixtures/stub-upstream';
import { sleep, tempDir } from '../../unit/ingest/harness';

// Each child transpiles the proxy on start (a few seconds on a busy machine).
jest.setTimeout(90_000);

const CHILD = path.join(__dirname, 'proxy-child.ts');
const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.restart.sig';

/** Runs a .ts entry in a fresh node, transpiled on load (no build step, nothing written to disk). */
const TS_LOADER = `
const ts = require('typescript');
const fs = require('fs');
require.extensions['.ts'] = (m, file) => {
  const out = ts.transpileModule(fs.readFileSync(file, 'utf8'), {
    fileName: file,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  });
  m._compile(out.outputText, file);
};
require(process.argv[1]);
`;

interface Child {
  proc: ChildProcess;
  lines: Array<Record<string, unknown>>;
  exit: Promise<number | null>;
  url: () => string;
}

async function startChild(env: Record<string, string>): Promise<Child> {
  const proc = spawn(process.execPath, ['-e', TS_LOADER, CHILD], {
    cwd: path.resolve(__dirname, '../../..'),
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: Array<Record<string, unknown>> = [];
  let buf = '';
  proc.stdout?.on('data', (c: Buffer) => {
    buf += c.toString();
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    for (const p of parts) if (p.trim()) lines.push(JSON.parse(p));
  });
  const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 20_000;
  while (!lines.some((l) => l.msg === 'child ready')) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`child did not start: ${JSON.stringify(lines)}`);
    await sleep(25);
  }
  const ready = lines.find((l) => l.msg === 'child ready') as { url: string };
  return { proc, lines, exit, url: () => ready.url };
}

async function spooledLines(dir: string): Promise<number> {
  let n = 0;
  for (const name of await fsp.readdir(dir)) {
    if (!name.startsWith('seg-')) continue;
    n += (await fsp.readFile(path.join(dir, name), 'utf8')).split('\n').filter(Boolean).length;
  }
  return n;
}

async function spooledPrompts(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await fsp.readdir(dir)) {
    if (!name.startsWith('seg-')) continue;
    for (const line of (await fsp.readFile(path.join(dir, name), 'utf8')).split('\n').filter(Boolean)) out.push(promptOf(JSON.parse(line)));
  }
  return out;
}

async function chat(url: string, content: string): Promise<void> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer hf_childSecret' },
    body: JSON.stringify({ model: 'tgi', messages: [{ role: 'user', content }] }),
  });
  expect(res.status).toBe(200);
  await res.text();
}

const promptOf = (r: ReceivedRecord): string => (JSON.parse(r.requestPayload) as { messages: Array<{ content: string }> }).messages[0].content;

describe('the proxy process and its spool', () => {
  let stub: StubUpstream;
  let akto: AktoReceiver;
  let tmp: ReturnType<typeof tempDir>;
  const children: Child[] = [];
  const env = (): Record<string, string> => ({
    APP_URL: stub.url,
    AKTO_PROXY_PORT: '0',
    ADMIN_PORT: '0',
    ADMIN_HOST: '127.0.0.1',
    LISTEN_HOST: '127.0.0.1',
    AKTO_API_BASE_URL: akto.url,
    AKTO_API_TOKEN: TOKEN,
    SPOOL_DIR: tmp.dir,
    AKTO_BATCH_INTERVAL_MS: '50',
    AKTO_RETRY_BASE_MS: '50',
    AKTO_RETRY_MAX_MS: '200',
  });

  beforeAll(async () => {
    stub = await startStubUpstream();
  });
  afterAll(() => stub.close());
  beforeEach(async () => {
    akto = await startAktoReceiver({ token: TOKEN, forbidden: ['hf_childSecret'] });
    tmp = tempDir();
  });
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
    await akto.close();
    tmp.cleanup();
  });

  it('records spooled when the proxy is SIGKILLed are delivered after the restart', async () => {
    await akto.stop();
    // Akto down: records wait in memory first; a small memory bound makes most of them overflow to the spool.
    const first = await startChild({ ...env(), AKTO_MEMORY_QUEUE_BYTES: String(64 * 1024) });
    children.push(first);
    for (let i = 0; i < 25; i++) await chat(first.url(), `before kill ${i} ${'pad '.repeat(1000)}`);
    const deadline = Date.now() + 10_000;
    while ((await spooledLines(tmp.dir)) < 15) {
      if (Date.now() > deadline) throw new Error(`only ${await spooledLines(tmp.dir)} records reached the spool`);
      await sleep(25);
    }
    await sleep(200);
    const onDisk = await spooledPrompts(tmp.dir);
    first.proc.kill('SIGKILL');
    await first.exit;

    await akto.start();
    const second = await startChild(env());
    children.push(second);
    await akto.waitForRecords(onDisk.length, 15_000);
    await sleep(200);
    expect(akto.errors).toEqual([]);
    const prompts = akto.records.map(promptOf);
    expect(prompts.length).toBe(new Set(prompts).size);
    expect(new Set(prompts)).toEqual(new Set(onDisk));
    second.proc.kill('SIGTERM');
    expect(await second.exit).toBe(0);
    expect(await spooledLines(tmp.dir)).toBe(0);
  });

  it('with SPOOL_WRITE_AHEAD, a SIGKILL while Akto is stalled loses nothing (duplicates counted)', async () => {
    akto.behave({ delayMs: 20_000 });
    const first = await startChild({ ...env(), SPOOL_WRITE_AHEAD: 'true', AKTO_TIMEOUT_MS: '30000' });
    children.push(first);
    for (let i = 0; i < 15; i++) await chat(first.url(), `write-ahead ${i}`);
    const deadline = Date.now() + 10_000;
    while ((await spooledLines(tmp.dir)) < 15) {
      if (Date.now() > deadline) throw new Error(`only ${await spooledLines(tmp.dir)} records reached the spool`);
      await sleep(25);
    }
    first.proc.kill('SIGKILL');
    await first.exit;

    // The stalled POSTs of the dead process must not count: a fresh receiver stands in for Akto.
    await akto.close();
    akto = await startAktoReceiver({ token: TOKEN, forbidden: ['hf_childSecret'] });
    const second = await startChild({ ...env(), SPOOL_WRITE_AHEAD: 'true' });
    children.push(second);
    await akto.waitForRecords(15, 15_000);
    await sleep(200);
    const prompts = akto.records.map(promptOf);
    expect(new Set(prompts).size).toBe(15);
    expect(prompts.length - 15).toBe(0);
    second.proc.kill('SIGTERM');
    expect(await second.exit).toBe(0);
  });

  it('SIGTERM delivers what is queued before exiting 0, and spools it when Akto is down', async () => {
    const up = await startChild({ ...env(), AKTO_BATCH_INTERVAL_MS: '60000' });
    children.push(up);
    for (let i = 0; i < 10; i++) await chat(up.url(), `at sigterm ${i}`);
    expect(akto.records).toHaveLength(0);
    up.proc.kill('SIGTERM');
    expect(await up.exit).toBe(0);
    expect(akto.records.map(promptOf).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `at sigterm ${i}`).sort());

    await akto.stop();
    const down = await startChild({ ...env(), AKTO_BATCH_INTERVAL_MS: '60000', DRAIN_MS: '500' });
    children.push(down);
    for (let i = 0; i < 10; i++) await chat(down.url(), `spooled at sigterm ${i}`);
    down.proc.kill('SIGTERM');
    expect(await down.exit).toBe(0);
    expect(await spooledLines(tmp.dir)).toBe(10);
    expect(down.lines.some((l) => String(l.msg).includes('kept in the spool'))).toBe(true);
  });
});
