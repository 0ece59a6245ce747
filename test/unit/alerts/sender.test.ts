import type { PostResult } from '../../../proxy/ingest/sender';
import { loadAlertConfig } from '../../../proxy/alerts';
import type { AlertEvent } from '../../../proxy/alerts/format';
import { AlertSender } from '../../../proxy/alerts/sender';
import { createRegistry } from '../../../common/metrics';
import { captureLogger, flushLogs, manualClock } from '../limits/helpers';
import { waitFor } from '../../support/wait';

function setup(env: Record<string, string> = {}, answer: (n: number) => Promise<PostResult> | PostResult = () => ({ kind: 'ok', status: 200, acknowledged: false })) {
  const cfg = loadAlertConfig({ ALERT_WEBHOOK_URL: 'https://hooks.example.com/T000/B000/secret-path', ...env })!;
  const clock = manualClock();
  const posts: Array<Record<string, unknown>> = [];
  const { logger, lines } = captureLogger('info');
  const registry = createRegistry(false);
  let n = 0;
  const sender = new AlertSender(cfg, { version: '9.9.9', pod: 'agent-1', namespace: 'agents' }, async (body) => {
    posts.push(JSON.parse(body));
    return answer(++n);
  }, logger, registry, clock.now);
  return { sender, posts, clock, lines, registry };
}

const block = (identity: string, at: number, rule = 'prompt-injection'): AlertEvent => ({
  type: 'guardrail_block',
  key: `block|local|${rule}|${identity}`,
  severity: 'high',
  rule,
  subject: identity,
  model: 'tgi',
  requestId: `r-${at}`,
  at,
  finding: { tier: 'local', stage: 'request', detector: 'injection' },
});

describe('AlertSender', () => {
  test('the first event of a group goes out at once; repeats in the window are folded and follow with a count', async () => {
    const { sender, posts, clock, registry } = setup({ ALERT_DEDUP_WINDOW_MS: '60000' });
    const t0 = clock.now();
    sender.report(block('user:a', t0));
    await waitFor(() => posts.length === 1);
    expect(posts[0]).toMatchObject({ type: 'guardrail_block', count: 1, identity: 'user:a', pod: 'agent-1', namespace: 'agents', finding: { rule: 'prompt-injection', tier: 'local' } });
    clock.advance(1000);
    sender.report(block('user:a', clock.now()));
    clock.advance(1000);
    sender.report(block('user:a', clock.now()));
    sender.report(block('user:b', clock.now()));
    await waitFor(() => posts.length === 2);
    expect(posts[1]).toMatchObject({ identity: 'user:b', count: 1 });
    // The window passes with no new event: the sweep sends the folded ones.
    clock.advance(60_000);
    await waitFor(() => posts.length === 3, 3000);
    expect(posts[2]).toMatchObject({ identity: 'user:a', count: 3, firstSeen: new Date(t0).toISOString(), lastSeen: new Date(t0 + 2000).toISOString(), requestId: `r-${t0 + 2000}` });
    expect(await registry.getSingleMetricAsString('akto_proxy_alerts_deduplicated_total')).toContain('type="guardrail_block"} 2');
    await sender.close(100);
  });

  test('over ALERT_MAX_PER_MINUTE alerts wait for a token instead of being dropped', async () => {
    const { sender, posts, clock, registry } = setup({ ALERT_MAX_PER_MINUTE: '2' });
    for (const who of ['a', 'b', 'c']) sender.report(block(`user:${who}`, clock.now()));
    await waitFor(() => posts.length === 2);
    await new Promise((r) => setTimeout(r, 50));
    expect(posts).toHaveLength(2);
    clock.advance(30_000);
    await waitFor(() => posts.length === 3, 3000);
    expect(posts[2]).toMatchObject({ identity: 'user:c' });
    expect(await registry.getSingleMetricAsString('akto_proxy_alerts_dropped_total')).not.toMatch(/\} [1-9]/);
    await sender.close(100);
  });

  test('a failing receiver is retried; when retries run out the alert is counted and logged as dropped', async () => {
    const { sender, posts, lines, registry } = setup({ ALERT_RETRIES: '1' }, (n) => (n <= 3 ? { kind: 'retry', reason: 'http 503', status: 503 } : { kind: 'ok', status: 200, acknowledged: false }));
    sender.report(block('user:a', 1));
    await waitFor(() => posts.length === 2, 5000);
    await flushLogs();
    expect(await registry.getSingleMetricAsString('akto_proxy_alerts_dropped_total')).toContain('reason="failed"} 1');
    expect(await registry.getSingleMetricAsString('akto_proxy_alerts_retries_total')).toContain('akto_proxy_alerts_retries_total 1');
    const line = lines.find((l) => l.msg === 'alerts could not be delivered and were dropped');
    expect(line).toMatchObject({ level: 'error', dropped: { failed: 1 }, lastFailure: 'http 503', receiver: 'https://hooks.example.com' });
    expect(JSON.stringify(lines)).not.toContain('secret-path');
    await sender.close(100);
  });

  test('a refused alert (4xx) is not retried and is counted', async () => {
    const { sender, posts, registry } = setup({}, () => ({ kind: 'reject', status: 400, body: 'invalid_payload' }));
    sender.report(block('user:a', 1));
    await waitFor(() => posts.length === 1);
    await new Promise((r) => setTimeout(r, 30));
    expect(posts).toHaveLength(1);
    expect(await registry.getSingleMetricAsString('akto_proxy_alerts_dropped_total')).toContain('reason="rejected"} 1');
    await sender.close(100);
  });

  test('bounded: a full queue makes groups wait; a waiting group pushed out of memory, and what is left at shutdown, are counted drops', async () => {
    let release: (r: PostResult) => void = () => undefined;
    const { sender, posts, registry } = setup({ ALERT_QUEUE_SIZE: '1', ALERT_MAX_GROUPS: '2' }, () => new Promise<PostResult>((r) => (release = r)));
    for (const who of ['a', 'b', 'c', 'd']) sender.report(block(`user:${who}`, 1));
    expect(posts).toHaveLength(1);
    const text = await registry.getSingleMetricAsString('akto_proxy_alerts_dropped_total');
    expect(text).toContain('reason="evicted"} 1');
    const closing = sender.close(50);
    release({ kind: 'ok', status: 200, acknowledged: false });
    await closing;
    const after = await registry.getSingleMetricAsString('akto_proxy_alerts_dropped_total');
    expect(after).toMatch(/reason="shutdown"\} [1-9]/);
  });
});
