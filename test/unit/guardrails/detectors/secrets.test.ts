import { assignmentScore, createSecretsDetector, isPlaceholder, jwtHeaderValid, shannonEntropy } from '../../../../proxy/guardrails/detectors/secrets';
import { found, token } from './helpers';

const secrets = createSecretsDetector();
const b64url = (s: string): string => Buffer.from(s).toString('base64url');

describe('secrets: provider formats', () => {
  const cases: [string, string][] = [
    ['AWS_ACCESS_KEY', 'AKIA' + token(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')],
    ['HF_TOKEN', 'hf_' + token(34, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz')],
    ['OPENAI_KEY', 'sk-proj-' + token(40) + 'T3BlbkFJ' + token(40, undefined, 7)],
    ['GITHUB_TOKEN', 'ghp_' + token(36)],
    ['GITHUB_TOKEN', 'github_pat_' + token(82, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_')],
    ['GITLAB_TOKEN', 'glpat-' + token(20)],
    ['SLACK_TOKEN', 'xoxb-' + token(12, '0123456789') + '-' + token(12, '0123456789', 3) + '-' + token(24)],
    ['STRIPE_KEY', 'sk_live_' + token(24)],
    ['GOOGLE_API_KEY', 'AIza' + token(35)],
  ];
  it.each(cases)('finds %s', (entity, value) => {
    expect(found(secrets, `config: value ${value} end`)).toEqual([[entity, value]]);
  });
  it('rejects known examples, fillers and wrong lengths', () => {
    expect(found(secrets, 'AKIAIOSFODNN7EXAMPLE')).toEqual([]);
    expect(found(secrets, 'ghp_' + 'x'.repeat(36))).toEqual([]);
    expect(found(secrets, 'hf_' + token(10))).toEqual([]);
    expect(found(secrets, 'the task-force met in the desk room')).toEqual([]);
  });
});

describe('secrets: structured credentials', () => {
  it('finds a JWT only when its header decodes to JSON with alg', () => {
    const jwt = `${b64url('{"alg":"HS256","typ":"JWT"}')}.${b64url('{"sub":"1234567890","name":"x"}')}.${token(43)}`;
    expect(found(secrets, `Bearer-less ${jwt}`)).toEqual([['JWT', jwt]]);
    expect(jwtHeaderValid(`${b64url('{"typ":"JWT"}')}.abcd.efgh`)).toBe(false);
    expect(found(secrets, `eyJ${token(20)}.${token(20)}.${token(20)}`)).toEqual([]);
  });
  it('spans a PEM private key block from BEGIN to END', () => {
    const pem = `-----BEGIN RSA PRIVATE KEY-----\n${token(64)}\n${token(64, undefined, 9)}\n-----END RSA PRIVATE KEY-----`;
    expect(found(secrets, `key:\n${pem}\nthanks`)).toEqual([['PRIVATE_KEY', pem]]);
    expect(found(secrets, 'the string "-----BEGIN PRIVATE KEY-----" marks a key')).toEqual([]);
  });
  it('finds connection strings with passwords but not templates', () => {
    expect(found(secrets, 'DATABASE_URL=postgres://app:s3cr3tPw@db.internal:5432/app')).toEqual([['CONNECTION_STRING', 'postgres://app:s3cr3tPw@db.internal']]);
    expect(found(secrets, 'mongodb+srv://u:Zx9pQ2rL@cluster0.example.net/db')).toEqual([['CONNECTION_STRING', 'mongodb+srv://u:Zx9pQ2rL@cluster0.example.net']]);
    expect(found(secrets, 'redis://user:${REDIS_PASSWORD}@cache:6379')).toEqual([]);
    expect(found(secrets, 'postgres://db.internal:5432/app')).toEqual([]);
  });
  it('finds Authorization header credentials', () => {
    const t = token(32);
    expect(found(secrets, `Authorization: Bearer ${t}`)).toEqual([['AUTH_HEADER', t]]);
  });
});

describe('secrets: generic assignments', () => {
  it('flags high-entropy values assigned to credential names', () => {
    const v = token(32);
    expect(found(secrets, `api_key = "${v}"`)).toEqual([['GENERIC_SECRET', v]]);
    expect(found(secrets, `{"client_secret": "${v}"}`)).toEqual([['GENERIC_SECRET', v]]);
    expect(found(secrets, `password: Tr0ub4dor&3`)).toEqual([['GENERIC_SECRET', 'Tr0ub4dor&3']]);
  });
  it('treats "<service>_key" names as credentials, but not database or cache keys', () => {
    const v = token(40, 'abcdef0123456789', 5);
    expect(found(secrets, `softlayer_key: "${v}"`)).toEqual([['GENERIC_SECRET', v]]);
    expect(found(secrets, `cache_key = "${v}"`)).toEqual([]);
    expect(found(secrets, `primary-key: ${v}`)).toEqual([]);
  });
  it('ignores placeholders, references and low entropy', () => {
    for (const text of [
      'api_key = "your-api-key"',
      'token: <token>',
      'password=changeme',
      'API_KEY = os.environ["API_KEY"]',
      'secret = process.env.SECRET',
      'token = "xxxxxxxxxxxxxxxxxxxx"',
      'api_key = "aaaaaaaaaaaaaaaaaaaaaaaa"',
      'password = ${DB_PASSWORD}',
      'the secret to a good cake is butter',
    ]) {
      expect(found(secrets, text)).toEqual([]);
    }
  });
  it('exposes the scoring pieces', () => {
    expect(isPlaceholder('AKIAIOSFODNN7EXAMPLE')).toBe(true);
    expect(isPlaceholder('<token>')).toBe(true);
    expect(isPlaceholder(token(24))).toBe(false);
    expect(shannonEntropy('aaaa')).toBe(0);
    expect(shannonEntropy(token(64))).toBeGreaterThan(4.5);
    expect(assignmentScore('api_key', 'hello', true)).toBe(0);
  });
});

describe('secrets: pendingTail', () => {
  it('holds nothing after prose', () => {
    expect(secrets.pendingTail('Here is the summary you asked for. ')).toBe(0);
  });
  it('holds a token prefix split across chunks and an opened PEM block', () => {
    expect(secrets.pendingTail('your key is AKIA12')).toBe('AKIA12'.length);
    expect(secrets.pendingTail('token: gh')).toBeGreaterThanOrEqual(2);
    expect(secrets.pendingTail('use sk-')).toBe(3);
    const pem = '-----BEGIN PRIVATE KEY-----\nMIIEv';
    expect(secrets.pendingTail(`key:\n${pem}`)).toBe(pem.length);
    expect(secrets.pendingTail(`key:\n${pem}\n-----END PRIVATE KEY-----\nok. `)).toBe(0);
  });
  it('holds an unfinished credential assignment', () => {
    expect(secrets.pendingTail('export API_KEY="9fQ2')).toBeGreaterThanOrEqual('9fQ2'.length);
  });
});
