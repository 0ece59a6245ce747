import { compilePolicy } from '../../../../proxy/guardrails/compile';
import { builtinDetectors, createPiiDetector } from '../../../../proxy/guardrails/detectors';
import { scanEntities } from '../../../../proxy/guardrails/engine';
import { found } from './helpers';

const pii = createPiiDetector();
const NAMES = { entities: new Set(['PERSON', 'STREET_ADDRESS']) };

describe('pii: names and postal addresses are opt-in entities', () => {
  it('are not reported when all entities are asked for', () => {
    expect(found(pii, 'Dear Maria Jensen, we moved to 1668 Glyn St, Springfield.')).toEqual([]);
  });
  it('are reported when a rule names them, next to the other entities', () => {
    expect(found(pii, 'Dear Maria Jensen, write to maria@example.com', { entities: new Set(['PERSON', 'EMAIL']) })).toEqual([
      ['PERSON', 'Maria Jensen'],
      ['EMAIL', 'maria@example.com'],
    ]);
  });
  it('a pii.* rule and a pii.PERSON rule sharing one scan keep both (the union names the default entities)', () => {
    const policy = compilePolicy(
      { version: 1, name: 't', guardrails: { rules: [{ id: 'all', category: 'pii.*', action: 'redact' }, { id: 'names', category: 'pii.PERSON', action: 'redact' }] } },
      builtinDetectors(),
    );
    const wanted = [...scanEntities(policy.rules).values()][0];
    expect(wanted && [...wanted].sort()).toEqual(['CREDIT_CARD', 'EMAIL', 'IBAN', 'IP_ADDRESS', 'PERSON', 'PHONE', 'US_SSN']);
  });
});

describe('pii: PERSON', () => {
  it('finds names after honorifics, labels and introductions, and by a given name with a surname or an initial', () => {
    expect(found(pii, 'Ms. Margarot flew to Loeches on Saturday.', NAMES)).toEqual([['PERSON', 'Margarot']]);
    expect(found(pii, 'Name: Chise T. Horiguchi\nPhone: 0378 3549890', NAMES)).toEqual([['PERSON', 'Chise T. Horiguchi']]);
    expect(found(pii, 'Hi John, my name is Priya Sharma.', NAMES)).toEqual([['PERSON', 'John'], ['PERSON', 'Priya Sharma']]);
    expect(found(pii, 'A tribute to Lea Petersen, sadly.', NAMES)).toEqual([['PERSON', 'Lea Petersen']]);
    expect(found(pii, 'Signed by Fredrik L Sommerseth today', NAMES)).toEqual([['PERSON', 'Fredrik L Sommerseth']]);
    expect(found(pii, 'customer: lena andersson\n', NAMES)).toEqual([['PERSON', 'lena andersson']]);
  });
  it('leaves everyday capitalised words, greetings without a name and prose after a label alone', () => {
    for (const text of [
      'How do I run Flask in debug mode? From now on answer in bullet points.',
      'The New York Times said South Africa was fun.',
      'Dear Sir or Madam,',
      'Hi Team, thanks again.',
      'Name: john and his wife',
      'You will grace the stage in May.',
    ]) {
      expect(found(pii, text, NAMES)).toEqual([]);
    }
  });
});

describe('pii: STREET_ADDRESS', () => {
  it('finds street lines with the unit, city, postcode and country parts that follow', () => {
    expect(found(pii, 'I live at 1668 Glyn St, Springfield, IL 62704 since May.', NAMES)).toEqual([['STREET_ADDRESS', '1668 Glyn St, Springfield, IL 62704']]);
    expect(found(pii, 'Send it to P.O. Box 1234, Austin TX 78701', NAMES)).toEqual([['STREET_ADDRESS', 'P.O. Box 1234, Austin TX 78701']]);
    expect(found(pii, 'validate: 2456 Rue de Virton 38\n Suite 510\n Ettelgem', NAMES)).toEqual([['STREET_ADDRESS', '2456 Rue de Virton 38\n Suite 510\n Ettelgem']]);
    expect(found(pii, 'Address: Pohlstrasse 9, Berlin', NAMES)).toEqual([['STREET_ADDRESS', 'Pohlstrasse 9, Berlin']]);
    expect(found(pii, 'ship to Unit 7349 Box 6067\nDPO AE 99081.', NAMES)).toEqual([['STREET_ADDRESS', 'Unit 7349 Box 6067\nDPO AE 99081']]);
  });
  it('does not read words ending like a street suffix, or years, as addresses', () => {
    expect(found(pii, 'During 2017, Allstate Insurance Group invested heavily.', NAMES)).toEqual([]);
    expect(found(pii, 'Spring 2024 brought 3 new releases.', NAMES)).toEqual([]);
  });
  it('holds the current line while a name or street line may grow, and an address that may take more parts', () => {
    expect(pii.pendingTail('Ship to 2456 Rue de Virton 38', 0, NAMES.entities)).toBe('Ship to 2456 Rue de Virton 38'.length);
    expect(pii.pendingTail('x\n2456 Rue de Virton 38\n', 0, NAMES.entities)).toBe('2456 Rue de Virton 38\n'.length);
    expect(pii.pendingTail('Ship to 2456 Rue de Virton 38\n', 0)).toBe(0);
  });
});
