import { createPiiDetector, luhnValid, ibanValid, ssnValid, ipv6Valid, cardIssuer, gtinValid } from '../../../../proxy/guardrails/detectors/pii';
import { normalizeText } from '../../../../proxy/guardrails/normalize';
import { found } from './helpers';

const pii = createPiiDetector();

describe('pii: e-mail', () => {
  it('finds addresses and rejects near-misses', () => {
    expect(found(pii, 'write to jane.doe+tag@mail.example.co.uk today')).toEqual([['EMAIL', 'jane.doe+tag@mail.example.co.uk']]);
    expect(found(pii, 'user@localhost, @handle, a@b.c, x@y..com')).toEqual([]);
  });
});

describe('pii: addresses written without an "@"', () => {
  it('finds bracketed, spelled-out and escaped at-signs', () => {
    for (const address of [
      'alice.smith [at] example [dot] com',
      'alice.smith(at)example(dot)com',
      'ALICE {AT} EXAMPLE {DOT} COM',
      'bob.jones (at) mail (dot) example (dot) org',
      'x.alice[at]example[.]com',
      'alice.smith at example dot com',
      'alice at mail.example dot co dot uk',
      'alice.smith%40example.com',
      'alice%40example%2Ecom',
      'alice&#64;example&#46;org',
      'alice.smith&#64;example.com',
      'alice&#x40;example.org',
      'alice&commat;example.net',
    ]) {
      expect(found(pii, `write to ${address} today`)).toEqual([['EMAIL', address]]);
    }
  });
  it('leaves prose with "at" and "dot" alone', () => {
    for (const prose of ['look at example.com today', 'look at the dot com era', 'we met at noon dot', 'I work at a dot com', 'see you at home. Dot com bubble', 'prices (at) cost', 'a 40% rise']) {
      expect([prose, found(pii, prose)]).toEqual([prose, []]);
    }
  });
  it('holds one while it may still be growing in a stream', () => {
    expect(pii.pendingTail('write to alice [at] exam')).toBe('alice [at] exam'.length);
    expect(pii.pendingTail('write to alice at example do')).toBe('alice at example do'.length);
    expect(pii.pendingTail('write to alice%40exa')).toBe('alice%40exa'.length);
    expect(pii.pendingTail('we met at noon and left. ')).toBe(0);
  });
});

describe('pii: credit cards', () => {
  it('accepts Luhn-valid numbers with issuer prefixes, grouped or not', () => {
    expect(found(pii, 'card 4111 1111 1111 1111 exp 12/29')).toEqual([['CREDIT_CARD', '4111 1111 1111 1111']]);
    expect(found(pii, 'amex 378282246310005.')).toEqual([['CREDIT_CARD', '378282246310005']]);
    expect(found(pii, 'mc 5555-5555-5555-4444')).toEqual([['CREDIT_CARD', '5555-5555-5555-4444']]);
  });
  it('rejects a failed checksum and numbers glued to words', () => {
    expect(found(pii, 'card 4111 1111 1111 1112')).toEqual([]);
    expect(found(pii, 'order id X4111111111111111')).toEqual([]);
  });
  it('exposes the checks', () => {
    expect(luhnValid('79927398713')).toBe(true);
    expect(luhnValid('79927398710')).toBe(false);
    expect(cardIssuer('4111111111111111')).toBe('visa');
    expect(cardIssuer('378282246310005')).toBe('amex');
    expect(cardIssuer('9111111111111111')).toBeUndefined();
  });
});

describe('pii: US SSN', () => {
  it('applies the invalid-range rules', () => {
    expect(found(pii, 'SSN 123-45-6789')).toEqual([['US_SSN', '123-45-6789']]);
    for (const bad of ['000-12-3456', '666-12-3456', '912-34-5678', '123-00-4567', '123-45-0000']) {
      expect(found(pii, `SSN ${bad}`)).toEqual([]);
    }
    expect(ssnValid('078051120')).toBe(true);
  });
  it('needs context for undashed digits', () => {
    expect(found(pii, 'reference 123456789 attached')).toEqual([]);
    expect(found(pii, 'my ssn is 123456789')).toEqual([['US_SSN', '123456789']]);
  });
});

describe('pii: IBAN', () => {
  it('checks country length and mod-97, compact or grouped, any case', () => {
    expect(found(pii, 'IBAN GB82WEST12345698765432 please')).toEqual([['IBAN', 'GB82WEST12345698765432']]);
    expect(found(pii, 'iban DE89 3704 0044 0532 0130 00.')).toEqual([['IBAN', 'DE89 3704 0044 0532 0130 00']]);
    expect(found(pii, 'gb82west12345698765432')).toEqual([['IBAN', 'gb82west12345698765432']]);
    expect(found(pii, 'GB82WEST12345698765433')).toEqual([]);
    expect(found(pii, 'GB82WEST1234569876543')).toEqual([]);
    expect(ibanValid('XX82WEST12345698765432')).toBe(false);
  });
});

describe('pii: IP addresses', () => {
  it('finds IPv4 with octets <= 255 and valid IPv6', () => {
    expect(found(pii, 'from 192.168.10.254 and 2001:db8::8a2e:370:7334.')).toEqual([
      ['IP_ADDRESS', '192.168.10.254'],
      ['IP_ADDRESS', '2001:db8::8a2e:370:7334'],
    ]);
    expect(found(pii, 'not 256.1.1.1 nor 1.2.3 nor std::vector nor 12:30:45')).toEqual([]);
    expect(ipv6Valid('fe80::1ff:fe23:4567:890a')).toBe(true);
    expect(ipv6Valid('1:2:3:4:5:6:7:8:9')).toBe(false);
    expect(ipv6Valid('::ffff:192.0.2.128')).toBe(true);
  });
  it('lowers confidence for version strings', () => {
    expect(found(pii, 'upgrade to version 1.2.3.4 now')).toEqual([]);
  });
});

describe('pii: phone numbers', () => {
  it('finds international and national formats', () => {
    expect(found(pii, 'call +44 20 7946 0958 now')).toEqual([['PHONE', '+44 20 7946 0958']]);
    expect(found(pii, 'Office: (415) 555-2671')).toEqual([['PHONE', '(415) 555-2671']]);
    expect(found(pii, 'Fax: 345-899-3560x4587')).toEqual([['PHONE', '345-899-3560x4587']]);
    expect(found(pii, 'Phone:\n0393 1144137')).toEqual([['PHONE', '0393 1144137']]);
  });
  it('uses context words to decide short national numbers', () => {
    expect(found(pii, 'mobile 467 3395')).toEqual([['PHONE', '467 3395']]);
    expect(found(pii, 'we sold 467 3395 units')).toEqual([]);
    expect(found(pii, "driver's license number 6940579")).toEqual([]);
  });
  it('does not read dates, times or prices as phones', () => {
    expect(found(pii, 'On 2015-12-22 04:34:22 we paid 1 000 000')).toEqual([]);
  });
});

describe('pii: options and offsets', () => {
  it('honours per-entity enablement and thresholds', () => {
    const text = 'mail a@example.com card 4111111111111111';
    expect(found(pii, text, { entities: new Set(['EMAIL']) })).toEqual([['EMAIL', 'a@example.com']]);
    expect(found(pii, text, { threshold: 0.95 })).toEqual([['CREDIT_CARD', '4111111111111111']]); // e-mail scores 0.9
  });
  it('reports offsets on the original text across stripped and folded characters', () => {
    const text = 'card ４１１１\u200b 1111 1111 1111!';
    const [m] = pii.scan(normalizeText(text));
    expect(m.entity).toBe('CREDIT_CARD');
    expect(text.slice(m.start, m.end)).toBe('４１１１\u200b 1111 1111 1111');
  });
});

describe('pii: pendingTail', () => {
  it('holds nothing after ordinary prose', () => {
    expect(pii.pendingTail('The weather is nice today. ')).toBe(0);
  });
  it('holds a word that could still grow into an address and an unfinished number', () => {
    expect(pii.pendingTail('write to jane.doe')).toBe('jane.doe'.length);
    expect(pii.pendingTail('mail jane@exam')).toBe('jane@exam'.length);
    expect(pii.pendingTail('card 4111 1111 ')).toBe(' 4111 1111 '.length);
    expect(pii.pendingTail('call +44 (20')).toBe(' +44 (20'.length);
  });
  it('is bounded', () => {
    expect(pii.pendingTail('x'.repeat(10000))).toBeLessThanOrEqual(64);
  });
});

describe('pii: the variants people write (issue 14 §4)', () => {
  it('finds IPv4 addresses with few digits, and the address of a CIDR block', () => {
    expect(found(pii, 'the server at 10.0.0.5 is down')).toEqual([['IP_ADDRESS', '10.0.0.5']]);
    expect(found(pii, 'use 8.8.4.4 or 1.1.1.1 as resolver')).toEqual([['IP_ADDRESS', '8.8.4.4'], ['IP_ADDRESS', '1.1.1.1']]);
    expect(found(pii, 'allow 10.0.0.0/24 and 192.168.1.7:8080')).toEqual([['IP_ADDRESS', '10.0.0.0'], ['IP_ADDRESS', '192.168.1.7']]);
  });
  it('reads versions, builds and section numbers as what they are', () => {
    for (const text of ['build 4.18.0.240 released', 'kernel 5.15.0.91 and glibc', 'see section 1.2.3.4', 'shipped 2.4.0.1 (build 77)', 'Windows 10.0.19045.3803 installed']) {
      expect(found(pii, text)).toEqual([]);
    }
    expect(found(pii, 'pi is 3.14159265358 roughly')).toEqual([]);
  });
  it('finds cards with dots, slashes and unusual grouping, but not barcodes', () => {
    expect(found(pii, 'card 4111.1111.1111.1111')).toEqual([['CREDIT_CARD', '4111.1111.1111.1111']]);
    expect(found(pii, 'card 4111/1111/1111/1111')).toEqual([['CREDIT_CARD', '4111/1111/1111/1111']]);
    expect(found(pii, 'pay with 41111 11111 111111')).toEqual([['CREDIT_CARD', '41111 11111 111111']]);
    expect(found(pii, 'number 5555 555555 554444 please')).toEqual([['CREDIT_CARD', '5555 555555 554444']]);
    expect(found(pii, 'card 4111  1111  1111  1111 ok')).toEqual([['CREDIT_CARD', '4111  1111  1111  1111']]);
    expect(found(pii, 'card 4111 - 1111 - 1111 - 1111 ok')).toEqual([['CREDIT_CARD', '4111 - 1111 - 1111 - 1111']]);
    // EAN-13 barcodes whose check digits also pass Luhn
    expect(found(pii, 'barcode 4006381333931 on the box')).toEqual([]);
    expect(found(pii, 'EAN 5901234123457')).toEqual([]);
    expect(found(pii, 'the code is 5901234123457')).toEqual([]);
    expect(gtinValid('4006381333931')).toBe(true);
  });
  it('finds IBANs grouped with dashes or dots', () => {
    expect(found(pii, 'IBAN DE89-3704-0044-0532-0130-00')).toEqual([['IBAN', 'DE89-3704-0044-0532-0130-00']]);
    expect(found(pii, 'IBAN DE89.3704.0044.0532.0130.00.')).toEqual([['IBAN', 'DE89.3704.0044.0532.0130.00']]);
  });
  it('finds SSNs written with dots or spaced dashes', () => {
    expect(found(pii, 'ssn 123.45.6789')).toEqual([['US_SSN', '123.45.6789']]);
    expect(found(pii, 'it is 123 - 45 - 6789')).toEqual([['US_SSN', '123 - 45 - 6789']]);
  });
  it('finds quoted and internationalised e-mail addresses', () => {
    expect(found(pii, 'write to "john doe"@example.com today')).toEqual([['EMAIL', '"john doe"@example.com']]);
    expect(found(pii, 'mail 用户@例子.广告 please')).toEqual([['EMAIL', '用户@例子.广告']]);
    expect(found(pii, 'mail jürgen.müller@beispiel.de, or user@xn--bcher-kva.example')).toEqual([
      ['EMAIL', 'jürgen.müller@beispiel.de'],
      ['EMAIL', 'user@xn--bcher-kva.example'],
    ]);
    expect(found(pii, 'He said "hi"@ the door')).toEqual([]);
  });
  it('finds phones in common international formats', () => {
    for (const phone of ['+44 (0) 20 7946 0958', '0044 20 7946 0958', '(+34) 612 345 678', '+7 (495) 123-45-67', '06.12.34.56.78', '030/1234567', '+1 (415) 555-2671 ext. 204']) {
      expect(found(pii, `call ${phone} today`)).toEqual([['PHONE', phone]]);
    }
  });
  it('holds an opened quote that may still become a quoted address, and nothing after a closed one', () => {
    expect(pii.pendingTail('mail "john do')).toBe('"john do'.length);
    expect(pii.pendingTail('mail "john doe"@exa')).toBe('"john doe"@exa'.length);
    expect(pii.pendingTail('He said "hi" to me. ')).toBe(0);
  });
});
