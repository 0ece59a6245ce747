import { createRegistry } from '../../../common/metrics';
import { createAdminServer, type AdminServer } from '../../../proxy/telemetry/admin-server';

describe('admin server', () => {
  let ready = true;
  let admin: AdminServer;
  beforeAll(async () => {
    admin = await createAdminServer({ port: 0, host: '127.0.0.1', registry: createRegistry(), ready: () => ready, detail: () => ['model tier: off'] });
  });
  afterAll(() => admin.close());

  it('answers /healthz, and /readyz with its detail until draining', async () => {
    const health = await fetch(`${admin.url}/healthz`);
    expect([health.status, health.headers.get('content-type'), await health.text()]).toEqual([200, 'text/plain; charset=utf-8', 'ok\n']);
    expect(await (await fetch(`${admin.url}/readyz?probe=1`)).text()).toBe('ready\nmodel tier: off\n');
    ready = false;
    const draining = await fetch(`${admin.url}/readyz`);
    expect([draining.status, await draining.text()]).toEqual([503, 'draining\n']);
    ready = true;
  });

  it('serves Prometheus text on /metrics, HEAD without a body, 404 elsewhere', async () => {
    const metrics = await fetch(`${admin.url}/metrics`);
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    expect(await metrics.text()).toContain('process_cpu_seconds_total');
    const head = await fetch(`${admin.url}/healthz`, { method: 'HEAD' });
    expect([head.status, head.headers.get('content-length'), await head.text()]).toEqual([200, '3', '']);
    expect((await fetch(`${admin.url}/healthz`, { method: 'POST' })).status).toBe(404);
    expect((await fetch(`${admin.url}/constructor`)).status).toBe(404);
  });
});
