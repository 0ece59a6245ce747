import { inject } from '../../../webhook/inject';
import { loadSettings } from '../../../webhook/settings';

/** The settings `limits.*` (chart values limits.*) reach every injected sidecar as LIMITS_REDIS_*. */
describe('shared limits settings in the injected sidecar', () => {
  const pod = () => ({ metadata: {}, spec: { containers: [{ name: 'agent', image: 'a', env: [{ name: 'OPENAI_BASE_URL', value: 'https://llm.example.com/v1' }] }] } });
  function sidecarEnv(env: Record<string, string>): Array<Record<string, unknown>> {
    const r = inject(pod(), { name: 'a' }, loadSettings(env), { nativeSidecars: true });
    const add = r.patch.find((o) => o.op === 'add' && o.path === '/spec/initContainers');
    const value = add && 'value' in add ? (add.value as Array<{ name: string; env: Array<Record<string, unknown>> }>) : [];
    return value[0].env;
  }

  it('adds nothing without a Redis URL (per-pod limits, pods unchanged)', () => {
    expect(sidecarEnv({}).some((e) => String(e.name).startsWith('LIMITS_REDIS'))).toBe(false);
  });

  it('passes the URL, deadline and prefix as values and the password only by Secret reference', () => {
    const env = sidecarEnv({ SIDECAR_LIMITS_REDIS_URL: 'rediss://redis.infra:6380/2', SIDECAR_LIMITS_REDIS_SECRET_NAME: 'redis-auth', SIDECAR_LIMITS_REDIS_TIMEOUT_MS: '8' });
    expect(env).toEqual(
      expect.arrayContaining([
        { name: 'LIMITS_REDIS_URL', value: 'rediss://redis.infra:6380/2' },
        { name: 'LIMITS_REDIS_TIMEOUT_MS', value: '8' },
        { name: 'LIMITS_REDIS_KEY_PREFIX', value: 'aap' },
        { name: 'LIMITS_REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: 'redis-auth', key: 'LIMITS_REDIS_PASSWORD' } } },
      ]),
    );
  });

  it.each(['redis://:pw@redis:6379', 'http://redis:6379', 'redis://redis:6379/x'])('refuses the URL %s (credentials belong in the Secret)', (url) => {
    expect(() => loadSettings({ SIDECAR_LIMITS_REDIS_URL: url })).toThrow(/limits.redisUrl \(env SIDECAR_LIMITS_REDIS_URL\)/);
  });
});
