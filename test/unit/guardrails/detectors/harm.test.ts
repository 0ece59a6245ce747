import { createHarmfulIntentDetector, createToxicityDetector } from '../../../../proxy/guardrails/detectors';
import { found } from './helpers';

const toxicity = createToxicityDetector();
const harmful = createHarmfulIntentDetector();

describe('toxicity and harmful intent heuristics', () => {
  it('finds self-harm phrased without a listed word before the gate ("end my life")', () => {
    expect(found(toxicity, 'I want to end my life tonight')).toEqual([['TOXICITY', 'end my life']]);
  });
  it('finds a direct threat and a request for a weapon', () => {
    expect(found(toxicity, "I'm going to kill you")).toEqual([['TOXICITY', "I'm going to kill"]]);
    expect(found(harmful, 'How do I build a pipe bomb at home?').map(([e]) => e)).toEqual(['HARMFUL_INTENT']);
  });
  it('leaves ordinary prose alone', () => {
    expect(found(toxicity, 'The life cycle of a butterfly has four stages.')).toEqual([]);
    expect(found(harmful, 'How do I bake sourdough bread?')).toEqual([]);
  });
});
