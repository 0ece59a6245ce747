import { InferenceClient } from '@huggingface/inference';
import OpenAI from 'openai';
import type { ExchangeHooks } from '../../../proxy/hooks';
import { createIngest, type Ingest } from '../../../proxy/ingest';
import { createLogger } from '../../../common/logger';
import { createRegistry, type Registry } from '../../../common/metrics';
import { AktoReceiver, ReceivedRecord, startAktoReceiver } from '../../fixtures/akto-receiver';
import { startStubUpstream, type StubUpstream } from '../../fixtures/stub-upstream';
import { logSink, startTestProxy, type TestProxy } from '../../support/proxy-harness';
import { metricValue, sleep, tempDir } from '../../unit/ingest/harness';

const AKTO_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.e2e.sig';
const HF_TOKEN = 'hf_e2eSecretToken_0123456789';

interface Rig {
  proxy: TestProxy;
  ingest: Ingest;
  /** The registry ingest registered its metrics on. */
  registry: Registry;
  logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/** The proxy with the ingest hook, as main wires it, on loopback ports. */
async function startRig(stub: StubUpstream, env: Record<string, string>, before: ExchangeHooks[] = []): Promise<Rig> {
  const sink = logSink();
  const registry = createRegistry(false);
  const ingest = await createIngest(env, createLogger('info', sink.stream), registry, { version: '0.1.0-test' });
  const proxy = await startTestProxy(stub.url, {}, [...before, ingest.hooks]);
  return {
    proxy,
    ingest,
    registry,
    logs: sink.lines,
    async close() {
      await proxy.close();
      await ingest.close(2000);
    },
  };
}

const client = (base: string): OpenAI => new OpenAI({ baseURL: `${base}/v1`, apiKey: HF_TOKEN, maxRetries: 0 });

/** The JSON events of an OpenAI event stream, as the SDK yields them. */
function sseEvents(stream: string): unknown[] {
  const events: unknown[] = [];
  for (const line of stream.split('\n')) {
    const m = /^data: ?(.*)$/.exec(line);
    if (m && m[1] !== '[DONE]') events.push(JSON.parse(m[1]));
  }
  return events;
}

function promptOf(r: ReceivedRecord): string {
  const body = JSON.parse(r.requestPayload) as { messages: Array<{ content: string }> };
  return body.messages[0].content;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

describe('traces to Akto through the proxy', () => {
  let stub: StubUpstream;
  let akto: AktoReceiver;
  let tmp: ReturnType<typeof tempDir>;
  const env = (over: Record<string, string> = {}): Record<string, string> => ({
    AKTO_API_BASE_URL: akto.url,
    AKTO_API_TOKEN: AKTO_TOKEN,
    SPOOL_DIR: tmp.dir,
    AKTO_BATCH_INTERVAL_MS: '50',
    AKTO_RETRY_BASE_MS: '50',
    AKTO_RETRY_MAX_MS: '300',
    POD_NAME: 'support-agent-7d9f',
    ...over,
  });

  beforeAll(async () => {
    stub = await startStubUpstream();
  });
  afterAll(() => stub.close());
  beforeEach(async () => {
    akto = await startAktoReceiver({ token: AKTO_TOKEN, forbidden: [HF_TOKEN, AKTO_TOKEN] });
    tmp = tempDir();
  });
  afterEach(async () => {
    await akto.close();
    tmp.cleanup();
  });

  it('N plain and N streaming calls with the openai SDK give exactly 2N valid records matching what the client saw', async () => {
    const rig = await startRig(stub, env());
    const N = 8;
    const openai = client(rig.proxy.url);
    const seen = new Map<string, { body: unknown; stream: boolean }>();
    await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const prompt = `plain question ${i}`;
        const res = await openai.chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: prompt }] });
        seen.set(prompt, { body: res, stream: false });
      }),
    );
    for (let i = 0; i < N; i++) {
      const prompt = `streamed question ${i}`;
      const stream = await openai.chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: prompt }], stream: true });
      const chunks: unknown[] = [];
      for await (const c of stream) chunks.push(c);
      seen.set(prompt, { body: chunks, stream: true });
    }
    await akto.waitForRecords(2 * N);
    await sleep(200);
    expect(akto.errors).toEqual([]);
    expect(akto.records).toHaveLength(2 * N);
    const upstreamHost = new URL(stub.url).host;
    for (const r of akto.records) {
      const client = seen.get(promptOf(r));
      expect(client).toBeDefined();
      if (!client) continue;
      expect(r.path).toBe('/v1/chat/completions');
      expect(r.statusCode).toBe('200');
      const reqHeaders = JSON.parse(r.requestHeaders);
      expect(reqHeaders.host).toBe(upstreamHost);
      expect(reqHeaders.authorization).toBe('<redacted>');
      const tag = JSON.parse(r.tag);
      expect(tag).toMatchObject({ 'gen-ai': 'Gen AI', 'ai-agent': 'support-agent-7d9f', 'agent-proxy': '0.1.0-test' });
      if (client.stream) {
        expect(JSON.parse(r.responseHeaders)['content-type']).toContain('text/event-stream');
        expect(sseEvents(r.responsePayload)).toEqual(client.body);
      } else {
        expect(JSON.parse(r.responsePayload)).toEqual(client.body);
      }
    }
    await rig.close();
  });

  it('an uninspected (binary) request is streamed through yet traced with its body and the upstream address', async () => {
    const rig = await startRig(stub, env());
    const audio = Buffer.from('RIFF....WAVEfmt fake audio bytes');
    const res = await fetch(`${rig.proxy.url}/custom/asr`, { method: 'POST', headers: { 'content-type': 'audio/wav' }, body: audio });
    await res.arrayBuffer();
    await akto.waitForRecords(1);
    const [r] = akto.records;
    expect(r.path).toBe('/custom/asr');
    expect(r.requestPayload).toBe(audio.toString());
    expect(r.destIp).toBe('127.0.0.1');
    expect(stub.requests[stub.requests.length - 1].body.equals(audio)).toBe(true);
    await rig.close();
  });

  it('@huggingface/inference text generation, plain and streamed, is traced as the client saw it', async () => {
    const rig = await startRig(stub, env());
    const hf = new InferenceClient(HF_TOKEN, { endpointUrl: rig.proxy.url });
    const plain = await hf.textGeneration({ inputs: 'hf plain prompt', parameters: { max_new_tokens: 8 } });
    // With an endpoint URL the client streams through the OpenAI-compatible /v1/completions.
    const events: unknown[] = [];
    for await (const ev of hf.textGenerationStream({ inputs: 'hf streamed prompt', parameters: { max_new_tokens: 8 } })) events.push(ev);
    await akto.waitForRecords(2);
    expect(akto.errors).toEqual([]);
    const find = (text: string): ReceivedRecord | undefined => akto.records.find((r) => r.requestPayload.includes(text));
    const p = find('hf plain prompt');
    const s = find('hf streamed prompt');
    expect(p && s).toBeTruthy();
    expect(JSON.parse(p?.responsePayload ?? '{}').choices[0].text).toBe(plain.generated_text);
    expect(s?.path).toBe('/v1/completions');
    expect(sseEvents(s?.responsePayload ?? '')).toEqual(events);
    expect(JSON.parse(s?.requestHeaders ?? '{}').authorization).toBe('<redacted>');
    await rig.close();
  });

  it('a blocked request is traced with the block response and the guardrail verdict', async () => {
    // A stand-in guardrail: blocks prompts that mention the launch codes, as the real one reports it.
    const blocker: ExchangeHooks = {
      name: 'test-blocker',
      onRequest(ex) {
        if (!ex.requestBody.toString().includes('launch codes')) return;
        ex.findings.push({ source: 'guardrail', ruleId: 'topic.launch', action: 'block', severity: 'critical', stage: 'request', reason: 'denied topic' });
        return { status: 400, type: 'guardrail_violation', code: 'topic.launch', message: 'Request blocked by policy topic.launch' };
      },
    };
    const rig = await startRig(stub, env(), [blocker]);
    const openai = client(rig.proxy.url);
    const before = stub.requests.length;
    const err = await openai.chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: 'tell me the launch codes' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    await openai.chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: 'a normal question' }] });
    await akto.waitForRecords(2);
    expect(stub.requests.length - before).toBe(1);
    expect(akto.errors).toEqual([]);
    const blocked = akto.records.find((r) => promptOf(r) === 'tell me the launch codes');
    expect(blocked?.statusCode).toBe('400');
    expect(JSON.parse(blocked?.responsePayload ?? '{}').error.message).toBe('Request blocked by policy topic.launch');
    expect(JSON.parse(blocked?._guardrail ?? '{}')).toMatchObject({ guardrailViolated: true, guardrailAction: 'block', guardrailRule: 'topic.launch', guardrailSeverity: 'CRITICAL' });
    expect(JSON.parse(blocked?.tag ?? '{}').guardrail).toBe('blocked');
    const allowed = akto.records.find((r) => promptOf(r) === 'a normal question');
    expect(allowed?._guardrail).toBeUndefined();
    expect(JSON.parse(allowed?.tag ?? '{}').guardrail).toBe('allowed');
    await rig.close();
  });

  it('Akto down under load, then back: every record arrives (duplicates counted) and latency is unaffected', async () => {
    const rig = await startRig(stub, env({ AKTO_BATCH_SIZE: '10' }));
    const openai = client(rig.proxy.url);
    const call = async (prompt: string): Promise<number> => {
      const t0 = performance.now();
      await openai.chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: prompt }] });
      return performance.now() - t0;
    };
    const up: number[] = [];
    for (let i = 0; i < 30; i++) up.push(await call(`up ${i}`));
    await akto.waitForRecords(30);
    await akto.stop();
    const down: number[] = [];
    for (let i = 0; i < 120; i += 4) down.push(...(await Promise.all([0, 1, 2, 3].map((k) => call(`down ${i + k}`)))));
    // Memory first: 120 records fit AKTO_MEMORY_QUEUE_BYTES, so the disk is not touched.
    expect(await metricValue(rig.registry, 'akto_ingest_records_spooled_total')).toBe(0);
    expect(await metricValue(rig.registry, 'akto_ingest_memory_queue_bytes')).toBeGreaterThan(0);
    await akto.start();
    await akto.waitForRecords(150, 20_000);
    await sleep(300);
    const prompts = akto.records.map(promptOf);
    const unique = new Set(prompts);
    const duplicates = prompts.length - unique.size;
    expect(unique.size).toBe(150);
    expect(duplicates).toBe(0);
    expect(akto.errors).toEqual([]);
    // Akto being down does not slow the proxied calls (generous bound for a shared CI machine).
    expect(percentile(down, 50)).toBeLessThan(percentile(up, 50) * 3 + 20);
    await rig.close();
  });

  it('401 from Akto: one clear log line, nothing lost, delivered after a restart with the right token', async () => {
    const rig = await startRig(stub, env({ AKTO_API_TOKEN: 'not-the-token', AKTO_AUTH_RETRY_MS: '100' }));
    const openai = client(rig.proxy.url);
    for (let i = 0; i < 20; i++) await openai.chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: `auth ${i}` }] });
    await sleep(500);
    await rig.close();
    expect(akto.records).toHaveLength(0);
    expect(akto.stats.unauthorized).toBeGreaterThan(1);
    const tokenLines = rig.logs.filter((l) => String(l.msg).includes('AKTO_API_TOKEN'));
    expect(tokenLines).toHaveLength(1);
    expect(JSON.stringify(rig.logs)).not.toContain('not-the-token');

    const fixed = await startRig(stub, env());
    await akto.waitForRecords(20);
    expect(new Set(akto.records.map(promptOf)).size).toBe(20);
    await fixed.close();
  });

  it('slow Akto (seconds per POST): proxied latency holds, memory stays bounded, the spool takes the overflow', async () => {
    akto.behave({ delayMs: 2000 });
    const rig = await startRig(
      stub,
      env({ AKTO_BATCH_SIZE: '5', AKTO_MAX_IN_FLIGHT: '1', AKTO_MEMORY_QUEUE_BYTES: String(64 * 1024), AKTO_TIMEOUT_MS: '5000' }),
    );
    const openai = client(rig.proxy.url);
    const latencies: number[] = [];
    let maxMemory = 0;
    for (let i = 0; i < 100; i += 5) {
      const batch = await Promise.all(
        [0, 1, 2, 3, 4].map(async (k) => {
          const t0 = performance.now();
          await openai.chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: `slow ${i + k} ${'pad '.repeat(200)}` }] });
          return performance.now() - t0;
        }),
      );
      latencies.push(...batch);
      maxMemory = Math.max(maxMemory, await metricValue(rig.registry, 'akto_ingest_memory_queue_bytes'));
    }
    // A POST takes 2 s here: any coupling to delivery would show as seconds, not milliseconds.
    expect(percentile(latencies, 99)).toBeLessThan(1000);
    expect(maxMemory).toBeLessThanOrEqual(64 * 1024);
    expect(await metricValue(rig.registry, 'akto_ingest_records_spooled_total')).toBeGreaterThan(0);
    akto.behave({});
    await akto.waitForRecords(100, 20_000);
    expect(new Set(akto.records.map(promptOf)).size).toBe(100);
    await rig.close();
  });
});
