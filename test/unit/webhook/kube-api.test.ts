import { serviceAccountOwner } from '../../../webhook/kube-api';

const jwt = (claims: unknown) => ['{"alg":"RS256"}', JSON.stringify(claims), 'sig'].map((p, i) => (i < 2 ? Buffer.from(p).toString('base64url') : p)).join('.');

describe('the certificate Secret is owned by the webhook service account (helm uninstall removes it)', () => {
  test('reads namespace, name and uid from a projected service account token', () => {
    const token = jwt({ iss: 'https://kubernetes.default.svc', 'kubernetes.io': { namespace: 'akto', pod: { name: 'p', uid: 'u1' }, serviceaccount: { name: 'akto-webhook', uid: '6f1c-uid' } } });
    expect(serviceAccountOwner(token)).toEqual({ namespace: 'akto', owner: { apiVersion: 'v1', kind: 'ServiceAccount', name: 'akto-webhook', uid: '6f1c-uid' } });
  });

  test.each([
    ['not a JWT', 'abc'],
    ['a legacy token without the kubernetes.io claims', jwt({ sub: 'system:serviceaccount:akto:x' })],
    ['claims without a uid', jwt({ 'kubernetes.io': { namespace: 'akto', serviceaccount: { name: 'x' } } })],
    ['unparsable claims', 'e30.!!!.sig'],
  ])('%s: no owner', (_what, token) => {
    expect(serviceAccountOwner(token)).toBeUndefined();
  });
});
