import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../../../common/env';
import { createIngest } from '../../../proxy/ingest';
import { loadIngestConfig } from '../../../proxy/ingest/config';
import { createRegistry } from '../../../common/metrics';
import { startAktoReceiver, validateRecord } from '../../fixtures/akto-receiver';
import { captureLogger, metricValue, sleep, tempDir, waitUntil } from './harness';
import { makeExchange } from './make-exchange';

describe('loadIngestConfig', () => {
  it.each([
    [{ AKTO_API_BASE_URL: 'ftp://akto' }, 'AKTO_API_BASE_URL'],
    [{ AKTO_API_TOKEN: 'Bearer abc' }, 'AKTO_API_TOKEN'],
    [{ AKTO_TIME_UNIT: 'minutes' }, 'AKTO_TIME_UNIT'],
    // Akto's readers take `time` as an int of seconds: milliseconds would drop every record downstream.
    [{ AKTO_TIME_UNIT: 'ms' }, 'AKTO_TIME_UNIT'],
    [{ AKTO_ERROR_ATTEMPTS: '0' }, 'AKTO_ERROR_ATTEMPTS'],
    [{ AKTO_BATCH_SIZE: '0' }, 'AKTO_BATCH_SIZE'],
    [{ AKTO_BATCH_INTERVAL_MS: 'soon' }, 'AKTO_BATCH_INTERVAL_MS'],
    [{ AKTO_MAX_PAYLOAD_BYTES: String(8 * 1024 * 1024) }, 'AKTO_MAX_PAYLOAD_BYTES'],
    [{ SPOOL_MAX_BYTES: '10' }, 'SPOOL_MAX_BYTES'],
  ])('rejects %j naming %s, without echoing a token', (env, key) => {
    let err: unknown;
    try {
      loadIngestConfig(env);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).key).toBe(key);
    expect((err as Error).message).not.toContain('abc');
  });

  it('has documented defaults', () => {
    const c = loadIngestConfig({});
    expect(c.baseUrl).toBeUndefined();
    expect(c.traceFile).toBe(path.resolve('traces.jsonl'));
    expect(c.spool.dir).toBe(path.resolve('.spool'));
    expect(c.record.maxPayloadBytes).toBe(1024 * 1024);
    expect(c.delivery).toMatchObject({ batchSize: 100, batchIntervalMs: 1000, maxInFlight: 4 });
    expect(c.spool.maxBytes).toBe(256 * 1024 * 1024);
  });
});

describe('createIngest', () => {
  it('writes one JSONL record per exchange to TRACE_FILE when AKTO_API_BASE_URL is unset', async () => {
    const tmp = tempDir();
    const file = path.join(tmp.dir, 'out', 'traces.jsonl');
    const { logger, lines } = captureLogger();
    const registry = createRegistry(false);
    const ingest = await createIngest({ TRACE_FILE: file }, logger, registry, { version: '1.2.3' });
    ingest.hooks.onComplete?.(makeExchange({ id: 'a' }));
    ingest.hooks.onComplete?.(makeExchange({ id: 'b' }));
    await ingest.close(1000);
    const records = (await fsp.readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(records.map((r) => JSON.parse(r.tag)['exchange-id'])).toEqual(['a', 'b']);
    for (const r of records) expect(validateRecord(r, { forbidden: ['hf_secretToken123'] })).toEqual([]);
    expect(lines.some((l) => String(l.msg).includes('TRACE_FILE'))).toBe(true);
    expect(await metricValue(registry, 'akto_ingest_records_sent_total')).toBe(2);
    tmp.cleanup();
  });

  it('never throws into the request path: a broken exchange is counted and logged once', async () => {
    const tmp = tempDir();
    const { logger, lines } = captureLogger();
    const registry = createRegistry(false);
    const ingest = await createIngest({ TRACE_FILE: path.join(tmp.dir, 't.jsonl') }, logger, registry, { version: '1' });
    const broken = makeExchange({ requestBody: undefined as unknown as Buffer });
    expect(() => ingest.hooks.onComplete?.(broken)).not.toThrow();
    expect(() => ingest.hooks.onComplete?.(broken)).not.toThrow();
    expect(await metricValue(registry, 'akto_ingest_records_dropped_total', { reason: 'build_error' })).toBe(2);
    expect(lines.filter((l) => String(l.msg).includes('could not build'))).toHaveLength(1);
    await ingest.close(100);
    tmp.cleanup();
  });

  it('fails at start with SPOOL_DIR when the spool cannot be created', async () => {
    const tmp = tempDir();
    await fsp.writeFile(path.join(tmp.dir, 'file'), 'x');
    const { logger } = captureLogger();
    await expect(
      createIngest({ AKTO_API_BASE_URL: 'http://127.0.0.1:9', SPOOL_DIR: path.join(tmp.dir, 'file', 'spool') }, logger, createRegistry(false), { version: '1' }),
    ).rejects.toMatchObject({ key: 'SPOOL_DIR' });
    tmp.cleanup();
  });

  it.each([
    ['no token, Akto without authentication', undefined, undefined, /without authentication \(AKTO_API_TOKEN is not set\)/, 'warn'],
    ['the right token', 'good-token-1', 'good-token-1', /^Akto accepted AKTO_API_TOKEN \(auth check passed\)$/, 'info'],
  ])('says what the start-up check really checked: %s', async (_name, expected, given, message, level) => {
    const akto = await startAktoReceiver({ token: expected });
    const tmp = tempDir();
    const { logger, lines } = captureLogger();
    const env: Record<string, string> = { AKTO_API_BASE_URL: akto.url, SPOOL_DIR: tmp.dir };
    if (given) env.AKTO_API_TOKEN = given;
    const ingest = await createIngest(env, logger, createRegistry(false), { version: '1' });
    await waitUntil(() => lines.some((l) => message.test(String(l.msg))));
    const line = lines.find((l) => message.test(String(l.msg)))!;
    expect(line).toMatchObject({ level, check: 'GET /api/auth-check', status: 200 });
    if (!given) expect(lines.some((l) => String(l.msg).includes('accepted'))).toBe(false);
    await ingest.close(100);
    await akto.close();
    tmp.cleanup();
  });

  it('a start-up check answered with something else says the token could not be verified', async () => {
    const akto = await startAktoReceiver({ token: 't0ken-value' });
    const tmp = tempDir();
    const { logger, lines } = captureLogger();
    const ingest = await createIngest({ AKTO_API_BASE_URL: `${akto.url}/wrong/prefix`, AKTO_API_TOKEN: 't0ken-value', SPOOL_DIR: tmp.dir }, logger, createRegistry(false), { version: '1' });
    await waitUntil(() => lines.some((l) => String(l.msg).includes('could not verify AKTO_API_TOKEN: the auth check answered HTTP 404')));
    expect(lines.some((l) => String(l.msg).includes('accepted'))).toBe(false);
    await ingest.close(100);
    await akto.close();
    tmp.cleanup();
  });

  it('probes the token at start and reports a refused token once', async () => {
    const akto = await startAktoReceiver({ token: 'good' });
    const tmp = tempDir();
    const { logger, lines } = captureLogger();
    const ingest = await createIngest({ AKTO_API_BASE_URL: akto.url, AKTO_API_TOKEN: 'bad', SPOOL_DIR: tmp.dir }, logger, createRegistry(false), { version: '1' });
    for (let i = 0; i < 50 && akto.stats.authChecks === 0; i++) await sleep(10);
    await sleep(50);
    expect(akto.stats.authChecks).toBe(1);
    const refused = lines.filter((l) => String(l.msg).includes('AKTO_API_TOKEN'));
    expect(refused).toHaveLength(1);
    expect(JSON.stringify(lines)).not.toContain('"bad"');
    await ingest.close(100);
    await akto.close();
    tmp.cleanup();
  });
});
