import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAktoGuardrailsConfig } from '../../../proxy/akto';
import { loadAlertConfig } from '../../../proxy/alerts';
import { ConfigError } from '../../../common/env';
import { AKTO_GUARDRAILS_ENV } from '../../../proxy/akto/config';
import { ALERTS_ENV } from '../../../proxy/alerts/config';

const keyOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.key;
    throw err;
  }
  return undefined;
};

describe('Akto inline guardrails settings', () => {
  test('off by default', () => {
    expect(loadAktoGuardrailsConfig({ AKTO_API_BASE_URL: 'https://1-guardrails.akto.io' }, '0')).toBeUndefined();
  });

  test('defaults when on: 1500 ms, fail open, connector name, Akto URL and token shared with traces', () => {
    const c = loadAktoGuardrailsConfig({ AKTO_GUARDRAILS: 'Request', AKTO_API_BASE_URL: 'https://1-guardrails.akto.io', AKTO_API_TOKEN: 'tok' }, '0.1.0')!;
    expect(c).toMatchObject({ mode: 'request', onError: 'allow', client: { timeoutMs: 1500, connector: 'akto-agent-proxy', token: 'tok' }, record: { maxPayloadBytes: 4 * 1024 * 1024, version: '0.1.0' } });
    expect(c.client.baseUrl.href).toBe('https://1-guardrails.akto.io/');
  });

  test.each([
    [{ AKTO_GUARDRAILS: 'yes' }, 'AKTO_GUARDRAILS'],
    [{ AKTO_GUARDRAILS: 'both' }, 'AKTO_API_BASE_URL'],
    [{ AKTO_GUARDRAILS_TIMEOUT_MS: '0' }, 'AKTO_GUARDRAILS_TIMEOUT_MS'],
    [{ AKTO_GUARDRAILS_TIMEOUT_MS: '1.5s' }, 'AKTO_GUARDRAILS_TIMEOUT_MS'],
    [{ AKTO_GUARDRAILS_ON_ERROR: 'deny' }, 'AKTO_GUARDRAILS_ON_ERROR'],
    [{ AKTO_CONNECTOR: 'my connector' }, 'AKTO_CONNECTOR'],
    [{ AKTO_GUARDRAILS_MAX_PAYLOAD_BYTES: String(6 * 1024 * 1024) }, 'AKTO_GUARDRAILS_MAX_PAYLOAD_BYTES'],
    [{ AKTO_GUARDRAILS: 'request', AKTO_API_BASE_URL: 'https://x', AKTO_API_TOKEN: 'Bearer abc' }, 'AKTO_API_TOKEN'],
  ])('%p stops the start naming %s (also while off)', (env, key) => {
    expect(keyOf(() => loadAktoGuardrailsConfig(env, '0'))).toBe(key);
  });
});

describe('alert settings', () => {
  test('off without ALERT_WEBHOOK_URL; defaults otherwise', () => {
    expect(loadAlertConfig({})).toBeUndefined();
    expect(loadAlertConfig({ ALERT_WEBHOOK_URL: 'https://hooks.slack.com/services/T/B/secret', POD_NAME: 'p' })).toMatchObject({
      format: 'json',
      minSeverity: 'medium',
      dedupWindowMs: 300_000,
      maxPerMinute: 30,
      queueSize: 100,
      retries: 3,
      pod: 'p',
    });
  });

  test.each([
    [{ ALERT_WEBHOOK_URL: 'ftp://x' }, 'ALERT_WEBHOOK_URL'],
    [{ ALERT_FORMAT: 'teams' }, 'ALERT_FORMAT'],
    [{ ALERT_MIN_SEVERITY: 'severe' }, 'ALERT_MIN_SEVERITY'],
    [{ ALERT_MAX_PER_MINUTE: '0' }, 'ALERT_MAX_PER_MINUTE'],
    [{ ALERT_QUEUE_SIZE: '-1' }, 'ALERT_QUEUE_SIZE'],
  ])('%p stops the start naming %s', (env, key) => {
    expect(keyOf(() => loadAlertConfig(env))).toBe(key);
  });
});

describe('docs/akto.md', () => {
  test('has a table row for every AKTO_GUARDRAILS*, AKTO_CONNECTOR and ALERT_* variable the settings declare', () => {
    const doc = readFileSync(join(__dirname, '../../../docs/akto.md'), 'utf8');
    const read = [...Object.values(AKTO_GUARDRAILS_ENV), ...Object.values(ALERTS_ENV)].map((v) => v.name);
    expect(read.length).toBeGreaterThan(15);
    expect(read.filter((name) => !doc.includes(`| \`${name}\` |`))).toEqual([]);
  });
});
