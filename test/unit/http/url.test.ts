import { canonicalHost, isLoopbackHost, parseHttpUrlText, urlPort } from '../../../common/url';

const hostOf = (text: string): string => {
  const parsed = parseHttpUrlText(text);
  if (parsed.problem !== undefined) throw new Error(`${text}: ${parsed.problem}`);
  return parsed.url.hostname;
};

describe('upstream URL judgement shared by the proxy and the webhook', () => {
  test.each([
    'http://127.0.0.1', 'http://127.1', 'http://127.255.255.254:9', 'http://0.0.0.0', 'http://0', 'http://0x7f.1', 'http://0x7f000001',
    'http://2130706433', 'http://127.000.000.001', 'http://0177.0.0.1', 'http://%31%32%37.0.0.1', 'http://127.0.0.1.',
    'http://localhost', 'http://LOCALHOST', 'http://localhost.', 'http://LocalHost.:8080/v1', 'http://api.localhost', 'http://a.b.localhost.',
    'http://localhost.localdomain', 'http://ip6-localhost', 'http://[::1]', 'http://[0:0:0:0:0:0:0:1]', 'http://[::]',
    'http://[::ffff:127.0.0.1]', 'http://[::ffff:7f00:1]', 'http://[::ffff:0.0.0.0]', 'http://[::ffff:0:127.0.0.1]', 'http://[::127.0.0.1]',
    'http://user:pass@127.0.0.1:8080', 'http://evil.example.com@localhost/', 'https://[::1]:443',
  ])('%s reaches this machine', (url) => {
    expect(isLoopbackHost(hostOf(url))).toBe(true);
  });

  test.each([
    'http://10.0.0.1', 'http://128.0.0.1', 'http://1.127.0.0', 'http://126.255.255.255', 'http://api.openai.com', 'http://localhost.example.com',
    'http://notlocalhost', 'http://127.0.0.1@api.example.com', 'http://[2001:db8::1]', 'http://[::2]', 'http://[::ffff:10.0.0.1]',
    'http://[fe80::1]', 'http://[1::]', 'http://[::1:0:0:0]', 'http://[::0.0.0.2]',
  ])('%s is another machine', (url) => {
    expect(isLoopbackHost(hostOf(url))).toBe(false);
  });

  test.each([
    ['api.openai.com/v1', 'is not a valid URL'],
    ['ftp://example.com', 'must use http or https, got "ftp"'],
    ['file:///etc/passwd', 'must use http or https'],
    ['http://exa\tmple.com', 'spaces or control characters'],
    ['http://example.com/\r\nX: 1', 'spaces or control characters'],
    ['http://a b.com', 'spaces or control characters'],
    ['http://example.com/\u00a0v1', 'spaces or control characters'],
    ['http://example.com/\u200b', 'spaces or control characters'],
    ['http://', 'is not a valid URL'],
    ['   ', 'is empty'],
  ])('%j cannot be proxied: %s', (text, problem) => {
    const parsed = parseHttpUrlText(text);
    expect(parsed.problem).toContain(problem);
  });

  test('a problem never repeats the text, which may hold credentials', () => {
    expect(parseHttpUrlText('gopher://user:s3cret@host').problem).not.toContain('s3cret');
    expect(parseHttpUrlText('http://user:s3cret@ho st').problem).not.toContain('s3cret');
  });

  test('ports default by scheme; addresses compare in URL form', () => {
    expect(urlPort(new URL('http://x'))).toBe(80);
    expect(urlPort(new URL('https://x'))).toBe(443);
    expect(urlPort(new URL('https://x:8443'))).toBe(8443);
    expect(canonicalHost('::FFFF:10.1.2.3')).toBe('[::ffff:a01:203]');
    expect(canonicalHost('fe80::1%eth0')).toBe('[fe80::1]');
    expect(canonicalHost('10.1.2.3')).toBe('10.1.2.3');
    expect(canonicalHost('My-Pod')).toBe('my-pod');
  });
});
