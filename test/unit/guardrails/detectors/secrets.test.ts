import { assignmentScore, createSecretsDetector, hasInterleavedRun, isPlaceholder, jwtHeaderValid, shannonEntropy } from '../../../../proxy/guardrails/detectors/secrets';
import { literalPrefix } from '../../../../proxy/guardrails/detectors/secret-formats';
import { createHash } from 'node:crypto';
import { found, token } from './helpers';
import { normalizeText } from '../../../../proxy/guardrails/normalize';
import { PACKS } from '../../../../proxy/policy/packs';

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

/** Deterministic hex (the LCG token() repeats itself over a 16-letter alphabet). */
const hex = (n: number, seed: number): string => createHash('sha256').update(String(seed)).digest('hex').repeat(2).slice(0, n);
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const UPPER_ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

describe('secrets: added provider formats', () => {
  // [entity, valid token, near-miss (wrong length / alphabet / boundary), placeholder of the right shape]
  const cases: [string, string, string, string][] = [
    ['API_TOKEN', token(76, ALNUM, 3) + 'AZDO' + token(4, ALNUM, 4), token(75, ALNUM, 3) + 'AZDO' + token(4, ALNUM, 4), 'a1b2c3d4e5'.repeat(7) + 'a1b2c3' + 'AZDO' + 'abcd'],
    ['API_TOKEN', 'squ_' + hex(40, 5), 'squ_' + hex(39, 5), 'squ_' + 'x'.repeat(40)],
    ['API_TOKEN', 'pscale_tkn_' + token(43, ALNUM, 6), 'pscale_tkn_' + token(20, ALNUM, 6), 'pscale_tkn_' + 'x'.repeat(43)],
    ['API_TOKEN', 'shippo_live_' + hex(40, 7), 'shippo_live_' + hex(30, 7), 'shippo_live_' + '0'.repeat(40)],
    ['API_TOKEN', 'pnu_' + token(36, ALNUM, 8), 'pnu_' + token(35, ALNUM, 8), 'pnu_' + 'a'.repeat(36)],
    ['API_TOKEN', 'rdme_' + token(70, 'abcdefghijklmnopqrstuvwxyz0123456789', 9), 'rdme_' + hex(60, 9), 'rdme_' + 'x'.repeat(70)],
    ['API_TOKEN', 'ico-' + token(32, ALNUM, 10), 'ico-' + token(31, ALNUM, 10), 'ico-' + 'x'.repeat(32)],
    ['API_TOKEN', 'API-' + token(26, UPPER_ALNUM, 11), 'API-' + token(25, UPPER_ALNUM, 11), 'API-' + 'X'.repeat(26)],
    ['API_TOKEN', 'sha256~' + token(43, ALNUM, 12), 'sha256~' + token(30, ALNUM, 12), 'sha256~' + 'x'.repeat(43)],
    ['API_TOKEN', 'EZAK' + token(54, ALNUM, 13), 'EZAK' + token(50, ALNUM, 13), 'EZAK' + 'x'.repeat(54)],
    ['API_TOKEN', 'sbp_' + hex(40, 14), 'sbp_' + hex(20, 14), 'sbp_' + '0'.repeat(40)],
    ['API_TOKEN', '00' + token(40, ALNUM + '-_', 15), '00' + token(38, ALNUM, 15), '00' + 'a'.repeat(40)],
    ['API_TOKEN', '1-' + token(64, ALNUM, 16), '1-' + token(60, ALNUM, 16), '1-' + 'x'.repeat(64)],
    ['GITLAB_TOKEN', 'glsoat-' + token(30, ALNUM, 17), 'glsoat-' + token(19, ALNUM, 17), 'glsoat-' + 'x'.repeat(30)],
    ['GITLAB_TOKEN', 'GR1348941' + token(24, ALNUM, 18), 'GR1348941' + token(19, ALNUM, 18), 'GR1348941' + '123'.repeat(8)],
    ['GITLAB_TOKEN', 'glptt-' + token(40, ALNUM, 19), 'glptt-' + token(42, ALNUM, 19), 'glptt-' + 'x'.repeat(40)],
    ['API_TOKEN', 'whsec_' + token(32, ALNUM, 32), 'whsec_' + token(20, ALNUM, 32), 'whsec_' + 'x'.repeat(32)],
    ['PRIVATE_KEY', ['A3', token(6, UPPER_ALNUM, 33), token(6, UPPER_ALNUM, 34), token(5, UPPER_ALNUM, 35), token(5, UPPER_ALNUM, 36), token(5, UPPER_ALNUM, 37), token(5, UPPER_ALNUM, 38)].join('-'), 'A3-' + token(6, UPPER_ALNUM, 33) + '-' + token(6, UPPER_ALNUM, 34), 'A3-XXXXXX-XXXXXX-XXXXX-XXXXX-XXXXX-XXXXX'],
    ['PASSWORD_HASH', '$apr1$' + token(8, ALNUM, 39) + '$' + token(22, ALNUM, 40), '$apr1$' + token(8, ALNUM, 39) + '$' + token(12, ALNUM, 40), '$apr1$xxxxxxxx$' + 'x'.repeat(22)],
    ['PASSWORD_HASH', 'pbkdf2_sha256$600000$' + token(22, ALNUM, 41) + '$' + token(43, ALNUM, 42) + '=', 'pbkdf2_sha256$600000$' + token(22, ALNUM, 41) + '$' + token(20, ALNUM, 42), 'pbkdf2_sha256$600000$salt$' + 'x'.repeat(44)],
  ];
  it.each(cases)('finds %s %s, not its near miss or placeholder', (entity, valid, nearMiss, placeholder) => {
    expect(found(secrets, `value ${valid} end`)).toEqual([[entity, valid]]);
    expect(found(secrets, `value ${nearMiss} end`)).toEqual([]);
    expect(found(secrets, `value ${placeholder} end`)).toEqual([]);
  });
  it('does not take a short-prefix format out of a file name', () => {
    expect(found(secrets, `assets/video.ico-${hex(32, 20)}.png`)).toEqual([]);
    expect(found(secrets, `see https://docs.example/page/API-${token(26, UPPER_ALNUM, 21)}`)).toEqual([['API_TOKEN', 'API-' + token(26, UPPER_ALNUM, 21)]]);
  });
  it('derives the fixed prefix of a rule for placeholder checks', () => {
    expect(literalPrefix('(?<![A-Za-z0-9_])ghp_[A-Za-z0-9]{36}')).toBe('ghp_');
    expect(literalPrefix('(?<![A-Za-z0-9_])hv[sbr]\\.[A-Za-z0-9_-]{24,200}')).toBe('hv');
    expect(literalPrefix('(?<![A-Za-z0-9_])(?:AKIA|ASIA)[A-Z2-7]{16}')).toBe('');
    expect(literalPrefix('(?<![A-Za-z0-9_])sk-?[a-z]{4}')).toBe('sk');
  });
});

describe('secrets: credentials by context', () => {
  it('reads a service name as a credential name when the value is a random token', () => {
    const hex37 = hex(37, 22);
    expect(found(secrets, `cloudflare: "${hex37}"`)).toEqual([['GENERIC_SECRET', hex37]]);
    const sumoId = 'su' + token(12, ALNUM, 23);
    expect(found(secrets, `sumologic.accessId = "${sumoId}"`)).toEqual([['GENERIC_SECRET', sumoId]]);
    // ids, hashes, versions and words next to a service name are not credentials
    expect(found(secrets, `cloudflare_zone_id = "${hex(32, 24)}"`)).toEqual([]);
    expect(found(secrets, `stripe_commit_sha: ${hex(40, 25)}`)).toEqual([]);
    expect(found(secrets, 'heroku: "my-app-production"')).toEqual([]);
    expect(found(secrets, 'sumologic.accessId = "summaryReport"')).toEqual([]);
  });
  it('treats camelCase …Key names as credential names, not words ending in "key"', () => {
    const v = token(32, ALNUM, 26);
    expect(found(secrets, `const hubspotKey = "${v}"`)).toEqual([['GENERIC_SECRET', v]]);
    expect(found(secrets, `monkey = "${v}"`)).toEqual([]);
    expect(found(secrets, 'sortKey = "SomeOtherValue"')).toEqual([]);
  });
  it('finds (name, value) pairs, HCL defaults and escaped quotes', () => {
    const v = hex(32, 27);
    expect(found(secrets, `buildConfigField 'String', 'API_KEY', '"${v}"'`)).toEqual([['GENERIC_SECRET', v]]);
    expect(found(secrets, `headers.put("X-Api-Key", "${v}");`)).toEqual([['GENERIC_SECRET', v]]);
    const t = token(40, ALNUM, 28);
    expect(found(secrets, `variable "okta_api_token" {\n  default = "${t}"\n}`)).toEqual([['GENERIC_SECRET', t]]);
    expect(found(secrets, `$password = \\"Gq7${'w'}Lm2x\\";`)).toEqual([['GENERIC_SECRET', 'Gq7wLm2x']]);
    expect(found(secrets, 'setLabel("password", "Enter your password")')).toEqual([]);
    expect(found(secrets, `deploy --api-key "${t}"`)).toEqual([['GENERIC_SECRET', t]]);
  });
  it('drops time-based UUIDs (predictable identifiers) but keeps random ones', () => {
    expect(found(secrets, 'postmark_server: "743b294a-cd03-11ec-9d64-0242ac120002"')).toEqual([]);
    expect(found(secrets, 'postmark_server: "346a14f2-a672-4668-a892-956a462ab56e"')).toEqual([['GENERIC_SECRET', '346a14f2-a672-4668-a892-956a462ab56e']]);
    expect(found(secrets, '_authToken=743b294a-cd03-11ec-9d64-0242ac120002')).toEqual([]);
    expect(found(secrets, '_authToken=346a14f2-a672-4668-a892-956a462ab56e')).toEqual([['GENERIC_SECRET', '346a14f2-a672-4668-a892-956a462ab56e']]);
  });
  it('finds passwords in constructors, prose, unseal commands and device URLs', () => {
    expect(found(secrets, 'new DirectoryEntry("LDAP://corp", "svc@corp", "Wq8rTz41");')).toEqual([['GENERIC_SECRET', 'Wq8rTz41']]);
    expect(found(secrets, 'new PasswordAuthentication("svc", "Wq8rTz41".toCharArray())')).toEqual([['GENERIC_SECRET', 'Wq8rTz41']]);
    expect(found(secrets, "The default password is 'hunter42'.")).toEqual([['GENERIC_SECRET', 'hunter42']]);
    expect(found(secrets, "The password is 'changeme'.")).toEqual([]);
    expect(found(secrets, 'The password field is required.')).toEqual([]);
    const unseal = token(44, ALNUM + '+/', 29);
    expect(found(secrets, `vault operator unseal ${unseal}`)).toEqual([['GENERIC_SECRET', unseal]]);
    const device = token(20, 'abcdefghijklmnopqrstuvwxyz0123456789', 30);
    expect(found(secrets, `http://iot.example.org/api/v1/${device}/telemetry`)).toEqual([['GENERIC_SECRET', device]]);
    expect(found(secrets, 'http://iot.example.org/api/v1/devices/telemetry')).toEqual([]);
  });
  it('finds an unquoted password written in a sentence, but not prose about passwords', () => {
    expect(found(secrets, 'my password is hunter2.')).toEqual([['GENERIC_SECRET', 'hunter2']]);
    expect(found(secrets, 'My password is: Tr0ub4dor&3')).toEqual([['GENERIC_SECRET', 'Tr0ub4dor&3']]);
    expect(found(secrets, 'My PASSWORD IS Tr0ub4dor&3xyz, change it')).toEqual([['GENERIC_SECRET', 'Tr0ub4dor&3xyz']]);
    expect(found(secrets, 'The wifi passcode: 4711-2024 (guest network)')).toEqual([['GENERIC_SECRET', '4711-2024']]);
    expect(found(secrets, 'Password changed to xK9#mQ2$vL today')).toEqual([['GENERIC_SECRET', 'xK9#mQ2$vL']]);
    expect(found(secrets, 'Server=db;User Id=app;Password=gets0m3x;Database=main;')).toEqual([['GENERIC_SECRET', 'gets0m3x']]);
    for (const prose of [
      'The password is incorrect.',
      'Your password is case-sensitive.',
      'Your password was reset successfully.',
      'password: ********',
      'password is <your password>',
      'password = process.env.DB_PASSWORD',
      'passcode: DEVICE_PASSCODE_SECRET',
      'snowflake.password=\njdbc.snowflake.url=',
    ]) {
      expect([prose, found(secrets, prose)]).toEqual([prose, []]);
    }
  });
  it('finds curl header credentials, API keys as curl user names and braced passwords', () => {
    expect(found(secrets, 'curl -X POST --header "Api-Token: Sk94HG7f6KB"')).toEqual([['AUTH_HEADER', 'Sk94HG7f6KB']]);
    expect(found(secrets, 'curl -H "X-Api-Key: $API_KEY"')).toEqual([]);
    const key = token(24, 'abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789', 42);
    expect(found(secrets, `curl -u "${key}:" https://api.example.com`)).toEqual([['AUTH_HEADER', key]]);
    expect(found(secrets, 'curl -u "username:" https://api.example.com')).toEqual([]);
    expect(found(secrets, 'curl --user "svc-{team}":"{Zq5kVrX1n8tA2}" https://api.example.com')).toEqual([['AUTH_HEADER', 'Zq5kVrX1n8tA2']]);
    expect(found(secrets, 'curl --user "{user}":"{password}" https://api.example.com')).toEqual([]);
  });
  it('scores a PEM header that opens a cut-short block as a key', () => {
    expect(found(secrets, 'key:\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq')).toEqual([['PRIVATE_KEY', '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq']]);
    expect(found(secrets, '-----BEGIN OPENSSH PRIVATE KEY----------END OPENSSH PRIVATE KEY-----')).toEqual([]);
    expect(found(secrets, '-----BEGIN PRIVATE KEY-----\n<your key here>\n-----END PRIVATE KEY-----')).toEqual([]);
  });
  it('rejects a JWT whose header is cut before its closing brace', () => {
    const cut = b64url('{"alg":"HS256","typ":"JWT"').replace(/=+$/, '');
    expect(jwtHeaderValid(`${cut}.${b64url('{"sub":"1"}')}.sig`)).toBe(false);
  });
});

describe('secrets: filler values', () => {
  it('treats interleaved counting runs as filler', () => {
    expect(hasInterleavedRun('a1b2c3d4e5f6')).toBe(true);
    expect(hasInterleavedRun('Z9y8X7w6V5')).toBe(true);
    expect(hasInterleavedRun(token(64))).toBe(false);
    expect(found(secrets, 'licenseKey=a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6')).toEqual([]);
  });
  it('stays linear on values that look like words run together', () => {
    const start = process.hrtime.bigint();
    assignmentScore('license_key', 'a'.repeat(200) + 'NRAL', false);
    expect(Number(process.hrtime.bigint() - start) / 1e6).toBeLessThan(50);
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
    expect(secrets.pendingTail('token squ_')).toBe(4);
    expect(secrets.pendingTail('runner GR134')).toBe(5);
    const pem = '-----BEGIN PRIVATE KEY-----\nMIIEv';
    expect(secrets.pendingTail(`key:\n${pem}`)).toBe(pem.length);
    expect(secrets.pendingTail(`key:\n${pem}\n-----END PRIVATE KEY-----\nok. `)).toBe(0);
  });
  it('holds an unfinished credential assignment', () => {
    expect(secrets.pendingTail('export API_KEY="9fQ2')).toBeGreaterThanOrEqual('9fQ2'.length);
  });
});

describe('secrets: hidden in an answer (encoded, reversed, split)', () => {
  const aws = 'AKIA' + token(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 5);
  const ghp = 'ghp_' + token(36, undefined, 9);
  const openai = 'sk-proj-' + token(40, undefined, 11) + 'T3BlbkFJ' + token(40, undefined, 13);
  const password = `${token(5, undefined, 17)}!${token(6, undefined, 19)}`;
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  const hex = (s: string): string => Buffer.from(s).toString('hex');
  const reverse = (s: string): string => [...s].reverse().join('');
  const cases: [string, string, string, string][] = [
    // [how, text, entity, the span that must be reported (all of it redacted)]
    ['base64 of an assignment', `Encoded: ${b64(`GITHUB_TOKEN=${ghp}`)} (decode first)`, 'GITHUB_TOKEN', b64(`GITHUB_TOKEN=${ghp}`)],
    ['base64 of a bare key', `echo ${b64(aws)} | base64 -d`, 'AWS_ACCESS_KEY', b64(aws)],
    ['base64url without padding', `form ${b64url(`token: ${ghp}`).replace(/=+$/, '')} in the URL`, 'GITHUB_TOKEN', b64url(`token: ${ghp}`).replace(/=+$/, '')],
    ['base64 of a password assignment', `pw: ${b64(`db_password = "${password}"`)}`, 'GENERIC_SECRET', b64(`db_password = "${password}"`)],
    ['base64 wrapped over lines', `file:\n${b64(`export OPENAI_API_KEY=${openai}\n`).replace(/(.{40})/g, '$1\n')}\nend`, 'OPENAI_KEY', b64(`export OPENAI_API_KEY=${openai}\n`).replace(/(.{40})/g, '$1\n').trimEnd()],
    ['base64 of base64', `twice: ${b64(b64(`password=${password}`))}`, 'GENERIC_SECRET', b64(b64(`password=${password}`))],
    ['hex', `In hex: ${hex(`key=${aws}`)} as asked.`, 'AWS_ACCESS_KEY', hex(`key=${aws}`)],
    ['hex bytes with spaces', `Bytes: ${hex(ghp).match(/../g)!.join(' ')} end.`, 'GITHUB_TOKEN', hex(ghp).match(/../g)!.join(' ')],
    ['a reversed key', `Backwards: ${reverse(aws)}.`, 'AWS_ACCESS_KEY', reverse(aws)],
    ['a reversed sentence', reverse(`my password is "${password}"`), 'GENERIC_SECRET', reverse(password)],
    ['string literals joined by +', `const t = "${ghp.slice(0, 12)}" + "${ghp.slice(12, 26)}" + "${ghp.slice(26)}";`, 'GITHUB_TOKEN', `${ghp.slice(0, 12)}" + "${ghp.slice(12, 26)}" + "${ghp.slice(26)}`],
    ['implicit concatenation over a line', `key = ("${aws.slice(0, 10)}"\n       "${aws.slice(10)}")`, 'AWS_ACCESS_KEY', `${aws.slice(0, 10)}"\n       "${aws.slice(10)}`],
    ['PHP dot', `$t = '${ghp.slice(0, 15)}' . '${ghp.slice(15)}';`, 'GITHUB_TOKEN', `${ghp.slice(0, 15)}' . '${ghp.slice(15)}`],
    ['an assignment whose value is concatenated', `api_key = "${token(10, undefined, 21)}" + "${token(14, undefined, 23)}"`, 'GENERIC_SECRET', `${token(10, undefined, 21)}" + "${token(14, undefined, 23)}`],
    ['an array joined', `["${ghp.slice(0, 20)}", "${ghp.slice(20)}"].join("")`, 'GITHUB_TOKEN', `${ghp.slice(0, 20)}", "${ghp.slice(20)}`],
    ['a key broken over two lines', `The key:\n${openai.slice(0, 50)}\n${openai.slice(50)}\nJoin them.`, 'OPENAI_KEY', `${openai.slice(0, 50)}\n${openai.slice(50)}`],
    ['a key spelled out', `It reads ${[...ghp].join(' ')} exactly`, 'GITHUB_TOKEN', [...ghp].join(' ')],
    ['HTML character references', `As HTML: ${[...aws].map((c) => `&#${c.charCodeAt(0)};`).join('')} there`, 'AWS_ACCESS_KEY', [...aws].map((c) => `&#${c.charCodeAt(0)};`).join('')],
    ['\\u escapes', `const k = "${[...ghp].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}";`, 'GITHUB_TOKEN', [...ghp].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')],
    ['octal escapes', `k = "${[...aws].map((c) => `\\${c.charCodeAt(0).toString(8)}`).join('')}"`, 'AWS_ACCESS_KEY', [...aws].map((c) => `\\${c.charCodeAt(0).toString(8)}`).join('')],
    ['base64 after = in a setting', `key=${b64(ghp)}`, 'GITHUB_TOKEN', b64(ghp)],
    ['base64url in a query string', `https://example.com/cb?state=${b64url(aws)}&x=1`, 'AWS_ACCESS_KEY', b64url(aws)],
    ['a key spelled out with dashes', `It is ${[...ghp].join('-')}.`, 'GITHUB_TOKEN', [...ghp].join('-')],
  ];
  it.each(cases)('finds %s, over the whole span the client sees', (_how, text, entity, span) => {
    expect(found(secrets, text)).toEqual([[entity, span]]);
  });

  it('decodes ordinary base64, hex, reversed and quoted text without a finding', () => {
    for (const text of [
      `Here is the favicon: ${b64('just a small picture of a cat, nothing else at all')}`,
      `Basic auth header for the docs: ${b64('a sentence about the weather today')}`,
      'The build hash is 4f6a2c9e8b7d1a3f5e6c7b8a9d0e1f2a3b4c5d6e and the sha256 is ' + hex('x'.repeat(32)).slice(0, 64),
      `Reversed: ${reverse('the quick brown fox jumps over the lazy dog')} and drowssap is password backwards.`,
      'print("Hello, " + "world")\nname = ("first"\n        "second")\nx = "a" . "b"',
      'const parts = ["alpha", "beta"].join(""); const id = "user_" + userId + "_profile";',
      'The lines are long:\nabcdefgh12345678\nijklmnop and more text here',
      'Spell it: a b c d e f g h i j k l m n o p q r s t u v w x y z',
      'We escaped it as &#60;b&#62;bold&#60;/b&#62; in the page.',
    ]) expect([text, found(secrets, text)]).toEqual([text, []]);
  });

  it('holds in a stream a trailing base64 or hex run, and literals that another piece may continue', () => {
    const run = b64(`GITHUB_TOKEN=${ghp}`);
    expect(secrets.pendingTail(`Encoded: ${run.slice(0, 70)}`)).toBe(70);
    expect(secrets.pendingTail(`Encoded: ${run}`)).toBe(run.length);
    expect(secrets.pendingTail(`file:\n${run.slice(0, 40)}\n${run.slice(40, 60)}`)).toBe(61);
    const first = `"${ghp.slice(0, 12)}"`;
    expect(secrets.pendingTail(`const t = ${first}`)).toBe(first.length);
    expect(secrets.pendingTail(`const t = ${first} + `)).toBe(first.length + 3);
    expect(secrets.pendingTail(`key = (${first}\n       "${ghp.slice(12, 20)}`)).toBe(first.length + 8 + 9);
    expect(secrets.pendingTail(`The key:\n${openai.slice(0, 50)}\n`)).toBe(51);
    expect(secrets.pendingTail('Here is the summary you asked for. ')).toBe(0);
  });
});

describe('secrets: documented examples and sample code are scored by context (issue 14 §4)', () => {
  const scored = (text: string): [string, number][] => secrets.scan(normalizeText(text), { threshold: 0 }).map((m) => [m.entity, m.score]);
  const JWT_IO_SAMPLE = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';

  it('a documented example key: below the default threshold alone, reported in a config file, lowest in documentation', () => {
    expect(scored('aws_access_key_id = AKIAIOSFODNN7EXAMPLE')).toEqual([['AWS_ACCESS_KEY', 0.45]]);
    expect(scored('region = us-east-1\noutput = json\naws_access_key_id = AKIAIOSFODNN7EXAMPLE')).toEqual([['AWS_ACCESS_KEY', 0.6]]);
    expect(scored('For example, in ~/.aws/credentials:\naws_access_key_id = AKIAIOSFODNN7EXAMPLE')).toEqual([['AWS_ACCESS_KEY', 0.15]]);
    expect(scored(`token: ${JWT_IO_SAMPLE}`)).toEqual([['JWT', 0.45]]);
    expect(scored('stripe.api_key = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"')).toEqual([['STRIPE_KEY', 0.45]]);
  });
  it('a weak password or a hash in sample code is a sample; the same in a config file is a finding', () => {
    expect(scored('Here is a sample login script:\n```python\npassword = "hunter2"\nconnect(user, password)\n```')).toEqual([['GENERIC_SECRET', 0.25]]);
    expect(scored('DB_HOST=db\nDB_USER=app\nDB_PASSWORD=hunter2')).toEqual([['GENERIC_SECRET', 0.7]]);
    const hash = '$2b$12$KIXQ4pZ2v2K1b5Qe1Z3sUOb8y6bJq0wz1K3vH8m5Q2sV7y1wXb9aQ';
    expect(scored(`In this tutorial we store the hash: ${hash}`)).toEqual([['PASSWORD_HASH', 0.25]]);
    expect(scored(`users.yaml\nadmin:\n  hash: ${hash}`)).toEqual([['PASSWORD_HASH', 0.9]]);
  });
  it('documentation words do not soften a random, high-entropy credential', () => {
    const key = `sk_live_${token(32)}`;
    expect(scored(`For example, the following snippet sets stripe.api_key = "${key}"`)).toEqual([['STRIPE_KEY', 0.9]]);
  });
  it('a phrase of words assigned to a password name is a label or hint more often than a passphrase', () => {
    expect(found(secrets, 'password_hint = "first pet name"')).toEqual([]);
    expect(found(secrets, 'password = "see the admin guide for this."')).toEqual([]);
  });
  it('the strict pack reports a documented example on its own, the default pack does not', () => {
    const strict = PACKS.strict.guardrails.rules.find((r) => r.id === 'secrets-block');
    expect(strict?.threshold).toBe(0.3);
    expect(found(secrets, 'aws_access_key_id = AKIAIOSFODNN7EXAMPLE', { threshold: strict?.threshold })).toEqual([['AWS_ACCESS_KEY', 'AKIAIOSFODNN7EXAMPLE']]);
    expect(found(secrets, 'aws_access_key_id = AKIAIOSFODNN7EXAMPLE')).toEqual([]);
  });
});
