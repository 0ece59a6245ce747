import { encodeCommand, RespError, RespParser, RespProtocolError } from '../../../proxy/limits/resp';

describe('RESP', () => {
  test('commands carry byte lengths, so non-ASCII arguments (model names, identities) frame correctly', () => {
    expect(encodeCommand(['EVALSHA', 'abc', 1, 'k:{i:user:zoë}'])).toBe('*4\r\n$7\r\nEVALSHA\r\n$3\r\nabc\r\n$1\r\n1\r\n$15\r\nk:{i:user:zoë}\r\n');
  });

  const stream = Buffer.from(['+OK\r\n', '-NOSCRIPT No matching script\r\n', ':42\r\n', '$-1\r\n', '$5\r\nhé\r\n\r\n', '*3\r\n:0\r\n$3\r\n4.5\r\n*1\r\n$0\r\n\r\n', '*-1\r\n'].join(''));
  const expected = ['OK', new RespError('NOSCRIPT No matching script'), 42, null, 'hé\r\n', [0, '4.5', ['']], null];

  test('parses every reply type, whole', () => {
    expect(new RespParser().push(stream)).toEqual(expected);
  });

  test('gives the same replies however the bytes are split', () => {
    for (let cut = 1; cut < stream.length; cut++) {
      const p = new RespParser();
      const got = [...p.push(stream.subarray(0, cut)), ...p.push(stream.subarray(cut))];
      expect(got).toEqual(expected);
    }
    const p = new RespParser();
    const oneByOne = [];
    for (let i = 0; i < stream.length; i++) oneByOne.push(...p.push(stream.subarray(i, i + 1)));
    expect(oneByOne).toEqual(expected);
  });

  test('bytes that are not RESP are a protocol error, not a guess', () => {
    expect(() => new RespParser().push(Buffer.from('HTTP/1.1 400 Bad Request\r\n'))).toThrow(RespProtocolError);
    expect(() => new RespParser().push(Buffer.from(':12x\r\n'))).toThrow(RespProtocolError);
  });
});
