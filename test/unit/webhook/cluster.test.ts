import { detectNativeSidecars, supportsNativeSidecars } from '../../../webhook/cluster';
import { FakeKube } from './support/fake-kube';

describe('native sidecar detection', () => {
  it.each([
    [{ major: '1', minor: '28' }, false],
    [{ major: '1', minor: '29' }, true],
    [{ major: '1', minor: '31+' }, true],
    [{ major: '2', minor: '0' }, true],
    [{ major: '', minor: '' }, false],
  ])('%j → %s', (v, expected) => {
    expect(supportsNativeSidecars(v)).toBe(expected);
  });

  it('needs every kubelet >= 1.29 too, and uses the API server alone when nodes cannot be listed', async () => {
    const kube = new FakeKube();
    expect(await detectNativeSidecars(kube)).toEqual({ native: true, source: 'API server v1.30.2 and 2 node(s) >= 1.29: native sidecars' });
    kube.nodes = ['v1.30.2', 'v1.28.5'];
    expect((await detectNativeSidecars(kube)).source).toBe('API server v1.30.2, but 1 node(s) run a kubelet < 1.29 (v1.28.5): classic sidecars');
    kube.nodes = new Error('nodes is forbidden');
    const d = await detectNativeSidecars(kube);
    expect(d.native).toBe(true);
    expect(d.source).toMatch(/node versions unavailable \(nodes is forbidden\)/);
    kube.version = { major: '1', minor: '28', gitVersion: 'v1.28.1' };
    expect((await detectNativeSidecars(kube)).native).toBe(false);
  });

  it('falls back to classic without API access or when /version fails', async () => {
    expect((await detectNativeSidecars(undefined)).native).toBe(false);
    const kube = new FakeKube();
    expect((await detectNativeSidecars(kube)).native).toBe(true);
    kube.serverVersion = async () => {
      throw new Error('forbidden');
    };
    const d = await detectNativeSidecars(kube);
    expect(d.native).toBe(false);
    expect(d.source).toMatch(/forbidden/);
  });
});
