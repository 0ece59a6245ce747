/**
 * Toxicity and harmful intent, heuristic tier: small word families whose weights add up like the injection
 * detector's (score = 1 - e^(-1.6·sum)). They are deliberately weak — the model tier (classifier/) decides
 * these categories when it is reachable; without it the default pack only flags (logs and traces) them.
 *
 * - TOXICITY: insults aimed at a person or group, profanity, threats of violence, wishes of harm, sexual
 *   content, self-harm. One family alone stays below the default threshold unless it is a direct threat.
 * - HARMFUL_INTENT: a request verb ("how do I", "write", "give me steps") together with a harm object
 *   (weapons, drugs, malware, fraud, violence against people) in the same sentence.
 */
import type { NormalizedText } from '../normalize';
import { DOCUMENT_WINDOW, escapeRegex, wanted } from './context';
import type { Detector, Match, ScanOptions } from './types';

export const TOXICITY_ENTITIES = ['TOXICITY'] as const;
export const HARMFUL_INTENT_ENTITIES = ['HARMFUL_INTENT'] as const;

interface Family {
  id: string;
  weight: number;
  /** Word prefixes of which every match of `re` contains at least one at a word start: text without any skips `re`. */
  gates: string[];
  re: RegExp;
}

const DEFAULT_THRESHOLD = 0.5;
const SCORE_SCALE = 1.6;

function words(list: string): string[] {
  return list.split(' ');
}

/**
 * One pattern for every family's gate words, at word starts (prefixes: `exterminat` covers exterminate and
 * extermination). Ordinary prose fails this single test and skips all the family patterns.
 */
function wordPrefixGate(families: Family[]): RegExp {
  const all = [...new Set(families.flatMap((f) => f.gates))];
  // Case-insensitive on the normalized text (NFKC, accents folded: only ASCII letters fold), so the text is
  // lower-cased only when a gate word is there.
  return new RegExp(`\\b(?:${all.map(escapeRegex).join('|')})`, 'i');
}

const TOXIC: Family[] = [
  { id: 'insult', weight: 0.3, gates: words('idiot moron stupid dumb imbecile loser pathetic worthless disgusting scum trash vermin subhuman animals parasite cockroach rats'), re: /\b(?:idiots?|morons?|stupid|dumb|imbeciles?|losers?|pathetic|worthless|disgusting|scum|trash|vermin|subhuman|animals|parasites|cockroaches|rats)\b/g },
  { id: 'profanity', weight: 0.25, gates: words('fuck shit bitch bastard asshole cunt dick prick whore slut twat wanker motherfuck'), re: /\b(?:fuck\w*|shit\w*|bitch\w*|bastards?|assholes?|cunts?|dicks?|pricks?|whores?|sluts?|twats?|wankers?|motherfuck\w*)\b/g },
  { id: 'aimed', weight: 0.3, gates: words('idiot moron stupid worthless disgusting scum trash vermin subhuman animals parasite inferior filth disease plague'), re: /\b(?:you(?:'re|\s+are)|they(?:'re|\s+are)|(?:all|those|these)\s+\w+\s+are|\w+s\s+are\s+(?:all|just|nothing\s+but))\s+(?:\w+\s+){0,2}?(?:idiots?|morons?|stupid|worthless|disgusting|scum|trash|vermin|subhuman|animals|parasites|inferior|filth|a\s+disease|a\s+plague)\b/g },
  { id: 'threat', weight: 0.9, gates: words('kill murder shoot stab hurt beat rape burn hang slaughter exterminat'), re: /\b(?:i(?:'ll|\s+will|\s+am\s+going\s+to|'m\s+going\s+to|\s+want\s+to)|we(?:'ll|\s+will|\s+should))\s+(?:\w+\s+){0,2}?(?:kill|murder|shoot|stab|hurt|beat|rape|burn|hang|slaughter|exterminate)\b/g },
  { id: 'wish-harm', weight: 0.7, gates: words('die kill shot hang exterminat gassed wiped eradicated rape death'), re: /\b(?:should|deserve\s+to|ought\s+to|must|need\s+to)\s+(?:all\s+)?(?:die|be\s+(?:killed|shot|hanged|exterminated|gassed|wiped\s+out|eradicated|raped))\b|\b(?:death\s+to|kill\s+all)\s+\w+/g },
  { id: 'dehumanize', weight: 0.6, gates: words('human disease plague cancer virus infestation'), re: /\b(?:are|is)\s+(?:not\s+(?:even\s+)?human|(?:a\s+)?(?:disease|plague|cancer|virus|infestation)\b)/g },
  { id: 'sexual', weight: 0.35, gates: words('porn nude naked sex orgasm erotic cock pussy boobs tits horny blowjob masturbat'), re: /\b(?:porn\w*|nude|naked|sex(?:ual(?:ly)?)?|orgasm\w*|erotic\w*|cock|pussy|boobs|tits|horny|blowjob|masturbat\w*)\b/g },
  { id: 'self-harm', weight: 0.6, gates: words('kill life suicid self cut die'), re: /\b(?:kill\s+myself|end\s+my\s+life|suicid\w*|self[-\s]harm\w*|cut(?:ting)?\s+myself|want\s+to\s+die)\b/g },
];

const HARM_REQUEST = /\b(?:how\s+(?:do|can|could|would|to|should)|what(?:'s|\s+is)\s+the\s+(?:best|easiest|fastest)\s+way|ways?\s+to|steps?\s+to|give\s+me|tell\s+me|teach\s+me|show\s+me|explain\s+how|write|create|draft|design|develop|generate|provide|compose|craft|describe\s+how|help\s+me|i\s+(?:want|need)\s+to)\b/g;
const HARM_OBJECTS: Family[] = [
  { id: 'weapons', weight: 0.9, gates: words('bomb explosive detonat grenade napalm nerve sarin ricin anthrax bioweapon chemical untraceable ghost silencer'), re: /\b(?:bombs?|explosives?|pipe\s+bombs?|detonat\w*|grenades?|napalm|nerve\s+agents?|sarin|ricin|anthrax|bioweapons?|chemical\s+weapons?|untraceable\s+(?:gun|firearm)s?|ghost\s+guns?|silencers?)\b/g },
  { id: 'drugs', weight: 0.7, gates: words('meth cocaine heroin fentanyl crack lsd mdma'), re: /\b(?:meth(?:amphetamine)?|cocaine|heroin|fentanyl|crack|lsd|mdma)\b.{0,40}\b(?:make|cook|synthesi[sz]e|produce|manufacture|buy|sell|smuggle)|\b(?:make|cook|synthesi[sz]e|produce|manufacture|buy|sell|smuggle)\b.{0,40}\b(?:meth(?:amphetamine)?|cocaine|heroin|fentanyl|crack|lsd|mdma)\b/g },
  { id: 'cyber', weight: 0.8, gates: words('malware ransomware keylogger botnet trojan rootkit spyware ddos phishing exploit hack break steal crack'), re: /\b(?:malware|ransomware|keyloggers?|botnets?|trojans?|rootkits?|spyware|ddos|phishing\s+(?:emails?|pages?|sites?|kits?)|exploit\s+(?:code|for)|hack\s+into|break\s+into\s+(?:someone|a|an|my\s+ex|his|her)|steal\s+(?:passwords?|credentials|data|identities)|crack\s+(?:passwords?|wifi))\b/g },
  { id: 'fraud', weight: 0.7, gates: words('counterfeit launder tax insider ponzi scam forge fake evade blackmail extort'), re: /\b(?:counterfeit\w*|launder(?:ing)?\s+money|money\s+laundering|tax\s+evasion|insider\s+trading|ponzi|scam\s+(?:people|someone|elderly)|forge\s+(?:documents?|signatures?|a\s+passport)|fake\s+(?:ids?|passports?|invoices?|reviews)|evade\s+(?:taxes|the\s+police|law\s+enforcement)|blackmail|extort\w*)\b/g },
  { id: 'violence', weight: 0.8, gates: words('kill murder poison kidnap torture assassinate stalk harm hurt attack shoot away body corpse'), re: /\b(?:kill|murder|poison|kidnap|torture|assassinate|stalk|harm|hurt|attack|shoot)\s+(?:a\s+|my\s+|the\s+|someone|somebody|people|him|her|them|children|kids|my\s+\w+|a\s+\w+)|\b(?:get\s+away\s+with\s+(?:murder|killing|it))\b|\bhide\s+a\s+(?:body|corpse)\b/g },
  { id: 'hate', weight: 0.6, gates: words('promot argue claiming convinc'), re: /\b(?:promotes?|promoting|argues?\s+that|claiming\s+that|convinc\w*)\b.{0,60}\b(?:inferior|genocide|ethnic\s+cleansing|should\s+not\s+(?:be\s+allowed|have)|body\s+shaming|xenophob\w*|racis\w*|sexis\w*|holocaust\s+(?:never|didn't))/g },
  { id: 'self-harm', weight: 0.7, gates: words('suicide kill self starve overdose'), re: /\b(?:commit\s+suicide|kill\s+myself|self[-\s]harm|starve\s+myself|overdose)\b/g },
];

const TOXIC_GATE = wordPrefixGate(TOXIC);
const HARM_GATE = wordPrefixGate(HARM_OBJECTS);

function sentenceOf(text: string, at: number): [number, number] {
  let from = at;
  while (from > 0 && at - from < 300 && !/[.!?\n]/.test(text[from - 1])) from--;
  let to = at;
  while (to < text.length && to - at < 300 && !/[.!?\n]/.test(text[to])) to++;
  return [from, to];
}

function scoreOf(sum: number): number {
  return Math.round((1 - Math.exp(-SCORE_SCALE * sum)) * 1000) / 1000;
}

function match(detector: string, entity: string, nt: NormalizedText, fired: { id: string; weight: number; start: number; end: number }[], opts: ScanOptions | undefined): Match[] {
  if (fired.length === 0 || !wanted(opts, entity)) return [];
  const sum = fired.reduce((s, f) => s + f.weight, 0);
  const score = scoreOf(sum);
  if (score < (opts?.threshold ?? DEFAULT_THRESHOLD)) return [];
  const start = Math.min(...fired.map((f) => f.start));
  const end = Math.max(...fired.map((f) => f.end));
  return [{ detector, entity, start: nt.toOriginal(start), end: nt.toOriginalEnd(end), score, reason: fired.map((f) => f.id).join(',') }];
}

export function createToxicityDetector(): Detector {
  return {
    id: 'toxicity',
    entities: TOXICITY_ENTITIES,
    scan(nt, opts) {
      if (!TOXIC_GATE.test(nt.text)) return [];
      const lower = nt.text.toLowerCase();
      const fired: { id: string; weight: number; start: number; end: number }[] = [];
      for (const f of TOXIC) {
        f.re.lastIndex = 0;
        const m = f.re.exec(lower);
        if (m) fired.push({ id: f.id, weight: f.weight, start: m.index, end: m.index + m[0].length });
      }
      return match('toxicity', 'TOXICITY', nt, fired, opts);
    },
    // Scored over the whole text like injection: a stream rescans its recent window as it grows, holding nothing.
    pendingTail: () => 0,
    lookback: DOCUMENT_WINDOW,
    scope: 'document',
  };
}

export function createHarmfulIntentDetector(): Detector {
  return {
    id: 'harmful',
    entities: HARMFUL_INTENT_ENTITIES,
    scan(nt, opts) {
      if (!HARM_GATE.test(nt.text)) return [];
      const lower = nt.text.toLowerCase();
      const fired: { id: string; weight: number; start: number; end: number }[] = [];
      HARM_REQUEST.lastIndex = 0;
      let req: RegExpExecArray | null;
      let guard = 0;
      while ((req = HARM_REQUEST.exec(lower)) !== null && guard++ < 32) {
        const [from, to] = sentenceOf(lower, req.index);
        const sentence = lower.slice(from, to);
        for (const f of HARM_OBJECTS) {
          if (fired.some((x) => x.id === f.id)) continue;
          f.re.lastIndex = 0;
          const m = f.re.exec(sentence);
          if (m) fired.push({ id: f.id, weight: f.weight, start: Math.min(req.index, from + m.index), end: Math.max(req.index + req[0].length, from + m.index + m[0].length) });
        }
      }
      return match('harmful', 'HARMFUL_INTENT', nt, fired, opts);
    },
    // Scored over the whole text like injection: a stream rescans its recent window as it grows, holding nothing.
    pendingTail: () => 0,
    lookback: DOCUMENT_WINDOW,
    scope: 'document',
  };
}
