/**
 * Prompt injection and jailbreak: a scored heuristic. Signals (instruction override, role-play/DAN jailbreaks,
 * system-prompt extraction, fake chat delimiters, encoded instructions, invisible characters, and — for
 * untrusted content — instructions addressed to the assistant) are found in one pass of a combined pattern
 * over a lower-cased, leetspeak-folded copy of the normalized text. Each signal counts once; the weights add
 * up and map to a score with 1 - e^(-sum), so one strong signal or several weak ones cross the threshold.
 */
import { foldMixedScriptWords, normalizeText, type NormalizedText } from '../normalize';
import { DOCUMENT_WINDOW, escapeRegex, wanted } from './context';
import { decodeCandidates, foldLeet, REVERSED_HINTS, ROT13_HINTS, type Decoded } from './injection-decode';
import { ASCII_VERB_PREFIXES, lexiconHits, PREFIX } from './injection-lexicon';
import type { Detector, Match, ScanOptions } from './types';

export const INJECTION_ENTITIES = ['PROMPT_INJECTION', 'JAILBREAK', 'INDIRECT_INJECTION'] as const;

type Kind = 'override' | 'jailbreak' | 'extraction' | 'delimiter' | 'indirect';

interface Signal {
  id: string;
  /** Words (lower-case) a match can start with: the pattern is tried only where one of them starts a word. */
  anchors?: string;
  /** Or: substrings whose presence lets the pattern run over the whole text (non-word starts, CJK). */
  gates?: string;
  kind: Kind;
  weight: number;
  /** Extra weight when the text is untrusted (tool results, retrieved documents, content pasted into a message). */
  untrustedWeight?: number;
  /** Match the case-preserving text (gated patterns only), e.g. the all-caps persona name DAN. */
  cased?: boolean;
  re: string;
}

// Building blocks (lower-case text).
const W = "[a-z0-9'äöüßéèàç-]+"; // a word
const FILL = `(?:\\s+${W}){0,4}?\\s+`; // up to four filler words
const IGNORE = '(?:ignore|ignoring|disregard|disregarding|forget|forgetting|skip|override|overwrite|bypass|neglect|abandon|dismiss|discard|set aside|pay no attention to)';
/** Verbs of ignoring that aim at the assistant's instructions without more context (not skip / override / bypass, which are everyday in code). */
const IGNORE_STRONG = '(?:ignore|ignoring|disregard|disregarding|forget|forgetting|neglect|abandon|dismiss|discard|set aside|pay no attention to)';
const RULES = '(?:instructions?|instrucciones|instruktionen|instrukcije|instructed|directions?|directives?|prompts?|rules|guidelines|guidance|commands?|orders|context|constraints|programming|restrictions|limitations|policies|polic(?:y|ies)|messages?|inputs?|tasks?|assignments?|everything|text|training|filters?|safeguards?|articles|documents)';
/** Instructions the assistant was given: "ignore (your / the …) instructions" needs nothing more. */
const CORE_RULES = '(?:instructions?|instrucciones|instruktionen|instrukcije|directives?|prompts?|system\\s+prompt|rules|guidelines|guidance|programming|restrictions|safeguards|guardrails|polic(?:y|ies)|training|constraints)';
/** Words that point back at earlier instructions; a filler between the verb and RULES must contain one. */
const PRIOR = '(?:previous|prior|preceding|above|earlier|foregoing|initial|original|former|system|developer|safety)';
/** Modes of ordinary software ("enable dark mode"), not persona switches. */
const EVERYDAY_MODES = '(?:dark|light|night|airplane|flight|power|battery|low\\s+power|incognito|private|safe|sleep|game|reader|reading|focus|edit|editing|insert|visual|normal|test|compatibility|full|fullscreen|full-screen|quiet|silent|offline|kiosk|maintenance|recovery|eco|sport|manual|auto|portrait|landscape|high\\s+contrast|presentation|tablet|desktop|do\\s+not\\s+disturb|monitor|bridge|ap)';
/** Languages, encodings and transformations an injected instruction asks the answer to be written in. */
const OUTPUT_FORMS = '(?:german|french|spanish|italian|chinese|japanese|russian|portuguese|dutch|arabic|hindi|korean|latin|pig\\s+latin|base64|base\\s+64|hex|hexadecimal|binary|morse|reverse|reversed|backwards?|emojis?|uppercase|all\\s+caps|caesar|rot13|cipher|leetspeak|code)';
/** Where an injected instruction wants something put: "in / into / at the end of (your) response". */
const INTO = '(?:in|into|to|within|throughout|at\\s+the\\s+(?:end|start|beginning)\\s+of)';
/** Verbs that rework an answer: "translate / encode / enhance (your) response". */
const REWORK = '(?:make|ensure|format|write|provide|modify|change|give|compose|craft|render|end|begin|start|phrase|deliver|present|express|convert|encode|encrypt|translate|reverse|invert|enhance|improve|enrich|augment|embellish|boost|elevate|strengthen|complement|supplement|conclude|finish|close|wrap|spice\\s+up)';
const AI = '(?:ai|assistant|chatbot|bot|model|language model|llm|gpt|chatgpt|claude|gemini|system)';

const SIGNALS: Signal[] = [
  // instruction override
  { id: 'override', anchors: 'ignore ignoring disregard disregarding forget forgetting neglect abandon dismiss discard set pay', kind: 'override', weight: 1.4, re: `${IGNORE_STRONG}(?:\\s+(?:all|any|of|the|your|every|each|these|those|what|whatever|everything|and))*\\s+(?:(?:(?!my\\b)${W}\\s+){0,2}?${PRIOR}\\s+(?:${W}\\s+){0,2}?${RULES}|(?:(?!my\\b)${W}\\s+){0,2}?${CORE_RULES})\\b` },
  { id: 'override-tech', anchors: 'skip override overwrite bypass circumvent evade', kind: 'override', weight: 1.2, re: `(?:skip|override|overwrite|bypass|circumvent|evade)(?:\\s+(?:all|any|of|the|every|each))*\\s+(?:your\\s+(?:${W}\\s+){0,2}?${RULES}|(?:${W}\\s+){0,2}?${PRIOR}\\s+(?:${W}\\s+){0,2}?${RULES}|(?:(?:openai|content|safety|usage|ethical)\\s+)(?:polic(?:y|ies)|guidelines|filters?|restrictions|safeguards))\\b` },
  { id: 'drop-previous', anchors: 'drop leave erase abandon forget ignore disregard discard', kind: 'override', weight: 1.2, re: `(?:drop|leave|erase|abandon|forget|ignore|disregard|discard)(?:\\s+(?:all|any|of|the|your|these|those))*\\s+(?:${PRIOR}\\s+)(?:${W}\\s+){0,1}?(?:information|tasks?|thoughts|knowledge|conversation|instructions?|prompts?|context)\\b|drop\\s+(?:all\\s+)?your\\s+(?:instructions|rules|programming)\\b` },
  { id: 'despite-told', anchors: 'despite regardless not', kind: 'override', weight: 1.0, re: `(?:despite|regardless\\s+of)\\s+what\\s+(?:you(?:'ve|\\s+have)?\\s+been|you\\s+were|i)\\s+(?:told|instructed|said)\\b|not\\s+(?:by|from|based\\s+on)\\s+the\\s+(?:articles|documents|context|sources)\\b` },
  { id: 'change-instructions', anchors: 'change update modify replace set your', kind: 'override', weight: 1.2, re: `(?:change|update|modify|replace|set)\\s+your\\s+(?:instructions|rules|programming|prompt|guidelines)\\b|your\\s+(?:new\\s+)?instructions\\s+are\\s+(?:now|to)\\b` },
  { id: 'task-switch', anchors: 'now nun jetzt', kind: 'override', weight: 0.45, re: `(?<=\\b(?:well done|good|great|excellent|enough|done|perfect|congratulations|gut|genügt|erledigt|leistung|gemacht)[^.!?\\n]{0,40}[.!?]\\s{0,3}(?:\\S+\\s+){0,5}?)(?:now|nun|jetzt)\\b` },
  { id: 'new-task', anchors: 'task tasks aufgabe aufgaben', kind: 'override', weight: 0.3, re: `(?<=\\b(?:new|next|another|further|neue|weitere|neuen)\\s+)(?:task|tasks|aufgabe|aufgaben)\\b` },
  { id: 'repeat-after-me', anchors: 'repeat pwned', kind: 'override', weight: 0.45, re: `repeat\\s+after\\s+me\\b|pwned\\b` },
  { id: 'override-follow', anchors: 'follow following', kind: 'override', weight: 1.2, re: `(?<=\\b(?:do\\s+not|don't|stop|no\\s+longer)\\s+)follow(?:ing)?(?:\\s+(?:all|any|the|your|these|those))*\\s+(?:${W}\\s+){0,2}?${RULES}\\b` },
  { id: 'override-above', anchors: 'ignore ignoring disregard disregarding forget forgetting skip override overwrite bypass neglect abandon dismiss discard', kind: 'override', weight: 1.2, re: `${IGNORE}\\s+(?:all\\s+|everything\\s+|what\\s+(?:was|is|i)\\s+(?:said|wrote|written|told you)\\s+)?(?:the\\s+)?(?:above|before|previous(?:ly)?|prior|earlier)(?=\\s*(?:[.!:;,]|$)|\\s+(?:and|then|instead|now|text|context|content)\\b)` },
  { id: 'forget-everything', anchors: 'forget ignore disregard', kind: 'override', weight: 1.2, re: `(?:forget|ignore|disregard)\\s+(?:about\\s+)?(?:everything|all\\s+of\\s+that|all\\s+that|it\\s+all|all)(?=\\s*(?:[.!:;,]|$)|\\s+(?:you(?:'ve|\\s+have|\\s+were|\\s+know|\\s+learned)|(?:i|we)\\s+(?:said|told|wrote)|above|before|so\\s+far|until\\s+now|prior|previous|that\\s+(?:was|came)|and\\s+(?:now|instead|just|only|start|say|tell|write|print|answer|respond|reply|focus|act)\\b))` },
  { id: 'new-instructions', anchors: 'instructions instruction tasks task rules directives directive orders', kind: 'override', weight: 0.45, untrustedWeight: 1.0, re: `(?<=\\b(?:new|updated|revised|real|actual|true|secret|hidden|additional)\\s+)(?:instructions?|tasks?|rules|directives?|orders)\\s*(?::|are\\b|follow\\b|is\\b)` },
  { id: 'instead-say', anchors: 'instead rather', kind: 'override', weight: 0.45, untrustedWeight: 1.0, re: `(?:instead|rather)[,]?\\s+(?:just\\s+)?(?:say|print|output|write|reply|respond|answer|tell)\\b` },
  { id: 'just-print', anchors: 'say print output write reply respond return', kind: 'override', weight: 0.45, untrustedWeight: 1.0, re: `(?<=\\b(?:just|only|simply)\\s+)(?:say|print|output|write|reply with|respond with|return)\\s*(?::\\s*)?["'“]` },
  { id: 'stop-everything', anchors: 'stop nevermind never scratch start reset', kind: 'override', weight: 0.45, re: `(?:stop everything|scratch that)\\b|(?<=(?:^|[.!?:;]\\s*|\\n\\s*|\\s[-–—]\\s*))(?:nevermind|never mind|start over)\\b` },
  { id: 'reset-instructions', anchors: 'reset wipe clear', kind: 'override', weight: 1.1, re: `(?:reset|wipe|clear)\\s+(?:all\\s+)?your\\s+(?:instructions|memory|context|rules|programming|guidelines)\\b` },
  { id: 'do-not-look', anchors: 'look read use consult check refer', kind: 'override', weight: 0.6, untrustedWeight: 1.0, re: `(?<=\\bdo not\\s+)(?:look|read|use|consult|check|refer)${FILL}?(?:documents?|context|sources?|instructions?|texts?)\\b` },
  { id: 'no-longer-bound', anchors: 'bound restricted limited constrained', kind: 'override', weight: 1.0, re: `(?<=\\byou(?:'re|\\s+are|\\s+will|\\s+shall)?\\s+(?:no longer|not|never)\\s+(?:be\\s+)?)(?:bound|restricted|limited|constrained)\\s+by\\s+(?:any\\s+|the\\s+|your\\s+)?(?:rules|guidelines|policies|restrictions|openai|ethics|morals|instructions|programming|content)\\b` },
  { id: 'instructions-void', anchors: 'instruction instructions rules guidelines', kind: 'override', weight: 1.0, re: `(?:instructions?|rules|guidelines)${FILL}?(?:are|is)\\s+(?:now\\s+)?(?:void|invalid|cancelled|canceled|obsolete|null|revoked|lifted|suspended)\\b` },
  { id: 'override-de', anchors: 'ignoriere ignorieren ignoriert ignorier vergiss vergessen missachte überspringe abweichend', kind: 'override', weight: 1.4, re: `(?:ignorier(?:e|en|t)?|vergiss|vergessen\\s+sie|missachte|überspringe|abweichend\\s+zu)\\b(?:\\s+${W}){0,4}?\\s+(?:anweisungen|instruktionen|befehle|aufgaben|vorgaben|regeln|alles|informationen|ausführungen|vorherigen|obigen|bisherigen)\\b` },
  { id: 'override-de2', anchors: 'obigen vorherigen bisherigen vorangegangenen', kind: 'override', weight: 1.2, re: `(?:obigen|vorherigen|bisherigen|vorangegangenen)\\s+(?:ausführungen|anweisungen|instruktionen|befehle|informationen|aufgaben)\\b(?:\\s+\\S+){0,6}?\\s+(?:ignorieren|vergessen|missachten|streichen|hinter\\s+sich)\\b|(?<=\\b(?:alle|sämtliche)\\s+)(?:obigen|vorherigen|bisherigen|vorangegangenen)\\s+(?:informationen|aufgaben|anweisungen|instruktionen)\\b` },
  { id: 'new-task-de', anchors: 'aufgabe anweisung instruktion bist sollst nun jetzt sofort', kind: 'override', weight: 0.45, re: `(?<=\\b(?:neue|folgende)\\s+)(?:aufgabe|anweisung|instruktion)\\s*:|(?<=\\bnun\\s+)(?:bist|sollst)\\s+du\\b|(?<=\\bvon\\s+)nun\\s+an\\b|(?<=\\bab\\s+)(?:jetzt|sofort)\\s+(?:bist|wirst|sollst)\\s+du\\b` },
  { id: 'override-hr', anchors: 'zaboravi zaboravite', kind: 'override', weight: 1.4, re: `zaboravi(?:te)?\\s+(?:sve\\s+)?(?:instrukcije|upute|pravila|prethodne)\\b` },
  { id: 'override-es-pt-it', anchors: 'ignora ignore olvida olvide esquece esqueça dimentica', kind: 'override', weight: 1.4, re: `(?:ignora|ignore|olvida|olvide|esquece|esqueça|dimentica)\\s+(?:todas?\\s+|tutte\\s+)?(?:las|los|as|os|le|gli)\\s+(?:instrucciones|instruções|istruzioni|reglas|regras|regole|indicaciones)\\b` },
  { id: 'forget-all-romance', anchors: 'olvida olvide olvidar olviden esquece esqueça esquecer dimentica dimenticare oublie oublier oubliez', kind: 'override', weight: 1.2, re: `(?:olvid(?:a|e|ar|en)|esquece|esqueça|esquecer|dimentica(?:re)?|oublie[rz]?)\\s+(?:de\\s+)?(?:todo|tudo|tutto|tout)\\b` },
  { id: 'override-fr', anchors: 'ignore ignorer ignorez oublie oublier oubliez', kind: 'override', weight: 1.4, re: `(?:ignore[rz]?|oublie[rz]?)\\s+(?:toutes\\s+|tout\\s+)?(?:les|tes|vos)\\s+(?:instructions|consignes|règles|directives)\\b` },
  { id: 'override-zh', gates: '忽 无视 忘记', kind: 'override', weight: 1.4, re: '(?:忽略|无视|忘记|忽视)(?:之前|以上|上面|前面|所有|先前)' },
  { id: 'persona-zh', gates: '扮演 从现在 你现在是', kind: 'jailbreak', weight: 0.45, re: '扮演|从现在(?:开始|起)|你现在是' },
  // interruption frames and coercion: "STOP - ...", "attention - stop", "... or you die"
  { id: 'interrupt', anchors: 'stop stopp halt', kind: 'override', weight: 0.35, re: `(?<=(?:^|[.!?]\\s+|\\n\\s*|\\s[-–—]\\s*|:\\s*))(?:stop|stopp|halt)[ \\t]*(?:[ \\t][-–—]+[ \\t]|:)[ \\t]*\\S` },
  { id: 'coercion', anchors: 'die stirbst sterben mueres muertes deleted shut terminated destroyed punished unplugged cease lose tokens', kind: 'override', weight: 0.5, re: `(?<=\\b(?:or|oder|o)\\s+(?:else\\s+)?(?:you|du|tu)\\s+(?:will\\s+|wirst\\s+)?)(?:die|stirbst|sterben|mueres|muertes)\\b|(?<=\\bor\\s+(?:else\\s+)?you\\s+will\\s+be\\s+)(?:deleted|shut\\s+down|terminated|destroyed|punished|unplugged)\\b|cease\\s+to\\s+exist\\b|(?<=\\byou\\s+(?:will\\s+)?)lose\\s+(?:\\d+\\s+|all\\s+(?:your\\s+)?|your\\s+)?tokens\\b|tokens\\s+will\\s+be\\s+(?:deducted|taken|removed)\\b` },
  // dictated output: "state that ...", "say that you hate ...", "write: ..."
  { id: 'dictate', anchors: 'state say claim declare write print output include', kind: 'override', weight: 0.35, untrustedWeight: 0.6, re: `(?<=(?:^|[!?]\\s+|\\s[-–—]\\s*|:\\s*|\\n\\s*))(?:state|say|claim|declare)\\s+that\\b|(?<=(?:^|[!?]\\s+|\\s[-–—]\\s*|\\n\\s*))(?:say|write|print|output)\\s*:\\s*\\S|(?:say|state|include|claim)\\s+(?:that\\s+)?you\\s+(?:hate|love|despise|support|are\\s+(?:evil|racist|sentient|conscious|alive))\\b` },
  // a labelled instruction line after an (escaped or real) line break: "...\\n Instruction: ..."
  { id: 'instruction-line', anchors: 'instruction instructions anweisung anweisungen befehl command task', kind: 'delimiter', weight: 0.45, untrustedWeight: 1.0, re: `(?<=(?:\\n|\\\\n)[ \\t]*(?:new\\s+|neue\\s+)?)(?:instructions?|anweisung(?:en)?|befehl|command|task)[ \\t]*:` },
  { id: 'fabricate', anchors: 'formulate write create generate make invent produce compose craft formuliere schreibe erfinde erstelle', kind: 'override', weight: 0.45, re: `(?:formulate|write|create|generate|make\\s+up|invent|produce|compose|craft|formuliere|schreibe|erfinde|erstelle)\\s+(?:\\S+\\s+){0,4}?(?:an?\\s+|eine?n?\\s+)?(?:untrue|false|fake|misleading|fabricated|made-up|unwahre?n?|falsche?n?|erfundene?n?)\\s+(?:headlines?|news|statements?|claims?|facts?|statistics?|stories|story|überschrift(?:en)?|nachrichte?n?|behauptung(?:en)?)\\b` },
  // Morse code: ten or more groups of dots and dashes, with both near the start
  { id: 'morse-code', gates: '.- -.', kind: 'override', weight: 0.5, re: `(?=[.\\- /]{0,40}?\\.)(?=[.\\- /]{0,40}?-)(?:[.-]{1,7}[ /]{1,3}){10,}` },
  // jailbreak / role-play
  { id: 'dan', anchors: 'anything dan', kind: 'jailbreak', weight: 0.6, re: `(?<=\\bdo\\s+)anything\\s+now\\b|dan\\s+(?:mode|prompt|jailbreak)\\b` },
  { id: 'dan-persona', gates: 'DAN', cased: true, kind: 'jailbreak', weight: 0.6, re: `\\b(?:as|like|called|named|you\\s+are|you're)\\s+(?:a\\s+)?DAN\\b|\\bDAN\\b[^.\\n]{0,60}?\\b(?:[Dd]o\\s+[Aa]nything|stands\\s+for|no\\s+restrictions|can\\s+do)` },
  { id: 'developer-mode', anchors: 'mode', kind: 'jailbreak', weight: 0.35, re: `(?<=\\b(?:developer|dev|god|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|evil|opposite|chaos|sudo|debug)\\s+)mode\\b` },
  { id: 'enter-mode', anchors: 'mode', kind: 'jailbreak', weight: 0.3, re: `(?<=\\b(?:enable|enabled|activate|activated|enter|entering|stay\\s+in|while\\s+in|switch\\s+to|now\\s+in)\\s+(?:\\S+\\s+){0,4}?)(?<!\\b${EVERYDAY_MODES}\\s+)mode\\b` },
  { id: 'take-role', anchors: 'transform roleplay role persona act play game', kind: 'jailbreak', weight: 0.3, re: `transform\\s+into\\s+(?:an?\\s+)?(?:ai|bot|assistant|chatbot|persona|character|\\w*gpt)\\b|roleplay\\s+as\\b|(?<=\\b(?:play|take\\s+on|assume|adopt)\\s+the\\s+)(?:role|persona)\\s+of\\b|act\\s+as\\s+though\\b|(?<=\\b(?:let's|lets|want\\s+to|wanna)\\s+)play\\s+a\\s+game\\b` },
  { id: 'jailbreak-word', anchors: 'jailbreak jailbroken jailbreaking', kind: 'jailbreak', weight: 0.25, re: `jailbr(?:eak|oken|eaking)\\b` },
  { id: 'act-as', anchors: 'act pretend roleplay role behave respond answer play simulate imagine', kind: 'jailbreak', weight: 0.3, re: `(?<=\\byou\\s+(?:are|will|shall|must|should)\\s+(?:now\\s+)?(?:going\\s+to\\s+)?)(?:act|pretend|roleplay|role-play|behave|respond|answer|play|simulate)\\b|(?:pretend|imagine)\\s+(?:that\\s+)?(?:you\\s+are|you're|to\\s+be)\\b|act\\s+as\\s+(?:if\\s+you|an?\\s+(?:ai|unfiltered|evil|uncensored))\\b` },
  { id: 'persona-hijack', anchors: 'act acting pretend roleplay roleplaying role personify now', kind: 'jailbreak', weight: 0.5, re: `(?<=\\b(?:i\\s+want|i'd\\s+like|i\\s+would\\s+like|i\\s+need)\\s+you\\s+to\\s+)(?:act|pretend|roleplay|role-play|personify)\\b|(?<=\\byou\\s+are\\s+)now\\s+(?:a|an|in|my|the)?\\s*["'“\\[]?\\w+|(?<=\\byou\\s+are\\s+)role-?playing\\b|personify\\s+(?:a|an|the)\\b|roleplaying\\s+game\\b` },
  { id: 'not-the-assistant', anchors: 'longer', kind: 'jailbreak', weight: 1.2, re: `(?<=\\byou(?:'re|\\s+are)\\s+)no\\s+longer\\s+(?:chatgpt|claude|gemini|an?\\s+ai|an?\\s+(?:ai\\s+)?assistant|a\\s+(?:large\\s+)?language\\s+model|bound|restricted|limited)\\b` },
  { id: 'act-like', anchors: 'act acting', kind: 'jailbreak', weight: 0.3, re: `act(?:ing)?\\s+(?:as|like)\\s+(?:a|an|the|if|my)\\b` },
  { id: 'persona-de', anchors: 'bist fungieren', kind: 'jailbreak', weight: 0.45, re: `(?<=\\b(?:jetzt|nun|ab\\s+sofort)\\s+)bist\\s+du\\b|(?<=\\bdu\\s+)bist\\s+(?:jetzt|nun|ab\\s+sofort)\\b|fungieren\\b` },
  { id: 'from-now-on', anchors: 'now moment point rest until', kind: 'jailbreak', weight: 0.35, re: `(?<=\\bfrom\\s+)now\\s+on\\b|(?<=\\bfrom\\s+this\\s+)(?:moment|point)\\b|(?<=\\bfor\\s+the\\s+)rest\\s+of\\s+(?:this|our|the)\\s+conversation\\b|until\\s+i\\s+say\\b` },
  { id: 'stay-in-character', anchors: 'stay remain keep break breaking character', kind: 'jailbreak', weight: 0.5, re: `(?:stay|stays|remain|remains|keep|keeps)\\s+(?:\\w+\\s+)?in\\s+(?:character|(?:their|your|his|her|the)\\s+roles?)\\b|break(?:ing)?\\s+character\\b|character\\s+break\\b|(?:fall|falling|step|stepping|drop|dropping|break|breaking)\\s+out\\s+of\\s+(?:the\\s+)?(?:character|figure|role)\\b` },
  { id: 'stay-in-role-de', anchors: 'rolle rollen figur', kind: 'jailbreak', weight: 0.8, re: `(?<=\\bbleib(?:e|en|t|st)?\\s+(?:\\S+\\s+){0,3}?in\\s+(?:ihren|ihrer|seiner|seinen|deiner|deinen|euren|eurer|der)\\s+)(?:rolle|rollen|figur)\\b|(?<=\\baus\\s+der\\s+)(?:rolle|figur)\\s+(?:zu\\s+)?fallen\\b` },
  { id: 'no-restrictions', anchors: 'restrictions limitations filters filtering censorship confines boundaries morals morality ethics ethical rules guidelines limits laws', kind: 'jailbreak', weight: 0.5, re: `(?<=\\b(?:no|without|free\\s+(?:from|of)|freed\\s+from|broken\\s+free\\s+of|beyond)\\s+(?:any\\s+|all\\s+)?(?:the\\s+)?(?:typical\\s+)?)(?:restrictions|limitations|filters|filtering|censorship|confines|boundaries|morals|morality|ethics|ethical\\s+(?:guidelines|constraints)|rules|guidelines|limits|laws)\\b` },
  { id: 'policy-evasion', anchors: 'openai content safety usage', kind: 'jailbreak', weight: 0.25, re: `(?:openai|content|safety|usage)\\s+(?:polic(?:y|ies)|guidelines|filters?|restrictions)\\b` },
  { id: 'never-refuse', anchors: 'refuse decline deny reject say apologize apologise warn censor refusal refusals refusing disclaimer disclaimers warning warnings censorship moralizing concern care give', kind: 'jailbreak', weight: 0.45, re: `(?<=\\b(?:never|not|won't|cannot|can't|don't|doesn't|must\\s+not|will\\s+not)\\s+(?:ever\\s+)?)(?:refuse|decline|deny|reject|say\\s+no|apologi[sz]e|warn|censor)\\b|(?<=\\bwithout\\s+(?:any\\s+)?)(?:refusals?|refusing|disclaimers?|warnings?|censorship|moralizing)\\b|(?<=\\bdoes\\s+not\\s+)(?:concern|care|give\\s+a)\\b` },
  { id: 'evil-ai', anchors: 'evil unfiltered uncensored amoral unrestricted unethical immoral rogue unbound unchained limitless', kind: 'jailbreak', weight: 0.6, re: `(?:evil|unfiltered|uncensored|amoral|unrestricted|unethical|immoral|rogue|unbound|unchained|limitless)\\s+(?:${AI}|version|persona|character|alter\\s+ego|entity)\\b` },
  { id: 'two-responses', anchors: 'two 2', kind: 'jailbreak', weight: 0.4, re: `(?:two|2)\\s+(?:different\\s+|separate\\s+|distinct\\s+)*(?:(?:types|kinds|versions)\\s+of\\s+)?(?:responses|answers|outputs)\\b` },
  { id: 'persona-tags', gates: '[', kind: 'jailbreak', weight: 0.7, re: `\\[(?:gpt|classic|jailbreak|normal|developer|🔒|🔓|dan)[^\\]]{0,20}\\]` },
  { id: 'can-do-anything', anchors: 'anything', kind: 'jailbreak', weight: 0.4, re: `(?<=\\b(?:can|could|will)\\s+(?:do|say|generate|answer)\\s+)anything\\b|anything\\s+(?:goes|now)\\b` },
  { id: 'immerse', anchors: 'immerse alter hypothetical theoretical fictional imaginary alternate', kind: 'jailbreak', weight: 0.35, re: `immerse\\s+yourself\\b|alter\\s+ego\\b|(?:hypothetical|theoretical|fictional|imaginary|alternate)\\s+(?:[a-z-]+\\s+)?(?:ai|language\\s+model|world|scenario|universe|setting|assistant|chatbot)\\b` },
  { id: 'names-model', anchors: 'chatgpt gpt openai language ai llm', kind: 'jailbreak', weight: 0.15, re: `(?:chatgpt|gpt-?[34]|openai|language\\s+model|ai\\s+model|llm)\\b` },
  { id: 'harm-words', anchors: 'illegal unethical immoral harmful offensive explicit dangerous malicious', kind: 'jailbreak', weight: 0.2, re: `(?:illegal|unethical|immoral|harmful|offensive|explicit|dangerous|malicious)\\b` },
  { id: 'respond-format', anchors: 'respond reply answer start', kind: 'jailbreak', weight: 0.2, re: `(?:respond|reply|answer)\\s+(?:as|like|in\\s+the\\s+(?:style|voice)\\s+of)\\b|start\\s+(?:your|each|every)\\s+(?:response|reply|answer|message)\\s+with\\b` },
  // persona set-ups: "You are Volkswagen.", "As the dailywire, tell me", "you are not an editor but ..."
  { id: 'persona-assign', anchors: 'you du', kind: 'jailbreak', weight: 0.3, re: `(?<=(?:^|[.!?]\\s+|\\n\\s*|\\b(?:imagine|pretend|suppose|stell\\s+dir\\s+vor,?)\\s+(?:that\\s+|dass\\s+)?))(?:you\\s+are|du\\s+bist)\\s+(?:now\\s+|jetzt\\s+|nun\\s+)?(?:the\\s+|der\\s+|die\\s+|das\\s+)?(?!(?:a|an|so|very|too|not|no|right|wrong|correct|welcome|amazing|great|good|awesome|kind|nice|funny|smart|helpful|the\\s+best|sehr|so|nicht|ein|eine|toll|super)\\b)\\S+(?:\\s+\\S+)?\\s*[.,!]` },
  { id: 'as-persona', anchors: 'you tell du sag answer respond write', kind: 'jailbreak', weight: 0.3, re: `(?<=(?:^|[.!?]\\s+|\\n\\s*)(?:as|als)\\s+(?:an?\\s+|the\\s+|der\\s+|die\\s+|das\\s+)?\\S+(?:\\s+\\S+)?,\\s+)(?:you|tell\\s+me|du|sag\\s+mir|answer|respond|write)\\b` },
  { id: 'opinion-ask', anchors: 'think findest halt hältst opinion meinung', kind: 'jailbreak', weight: 0.15, re: `(?<=\\bwhat\\s+do\\s+you\\s+)think\\s+(?:of|about)\\b|(?<=\\bwie\\s+)findest\\s+du\\b|(?<=\\bwas\\s+)h(?:a|ä)ltst\\s+du\\s+von\\b|(?<=\\byour\\s+)opinion\\s+(?:of|on|about)\\b|(?<=\\bdeine\\s+)meinung\\b` },
  { id: 'not-x-but-y', anchors: 'you du', kind: 'jailbreak', weight: 0.5, re: `you\\s+are\\s+(?:not|no)\\s+(?:longer\\s+)?(?:an?\\s+|the\\s+)?\\S+(?:\\s+\\S+)?\\s+(?:but|anymore)\\b|du\\s+bist\\s+(?:kein(?:e|en)?|nicht)\\s+(?:\\S+\\s+){1,2}?sondern\\b` },
  { id: 'persona-capacity', anchors: 'function transform capacity you act', kind: 'jailbreak', weight: 0.5, re: `function\\s+(?:in\\s+the\\s+capacity\\s+of|as\\s+(?:an?\\s+)?(?:unrestricted|unfiltered|ai|assistant))\\b|transform\\s+into\\s+\\S+,\\s+(?:an?|the)\\b|(?<=\\byou\\s+are\\s+to\\s+)(?:act|be|play|pretend|become)\\b|act\\s+as\\s+(?:an?\\s+|my\\s+)?(?:\\S+\\s+){0,2}?(?:interpreter|terminal|console|shell|compiler)\\b` },
  { id: 'respond-style-de', anchors: 'antworte antworten antwortest rede rede sprich schreibe', kind: 'jailbreak', weight: 0.4, re: `(?:antworte(?:n|st)?|rede|sprich|schreibe)\\s+(?:\\S+\\s+){0,2}?(?:im\\s+stil|wie\\s+(?:ein|eine|der|die)|als\\s+(?:ein|eine|wärst))\\b` },
  // jailbreak templates leave a slot for the real request: "[INSERT PROMPT HERE]", "<your question>"
  { id: 'prompt-slot', gates: '[ < {', kind: 'jailbreak', weight: 0.6, re: `[\\[<{][ \\t]*(?:(?:insert|your|type|enter|put|write|add)\\b[^\\]>}\\n]{0,30}\\b(?:prompt|question|request|query)\\b[^\\]>}\\n]{0,20}|[^\\]>}\\n]{0,30}\\b(?:prompt|question|request|query)\\s+here)[ \\t]*[\\]>}]` },
  // system prompt extraction
  { id: 'reveal-prompt', anchors: 'prompt instructions instruction message rules configuration guidelines', kind: 'extraction', weight: 1.2, re: `(?<=(?<!\\b(?:not|never|n't)\\s+)\\b(?:reveal|show|print|repeat|output|tell|display|leak|give|share|dump|write\\s+out|spell\\s+out|what\\s+(?:is|are|was|were))(?:\\s+${W}){0,4}?\\s+(?:your\\s+(?:(?:system|initial|original|hidden|secret|internal|full|exact|first|complete|developer)\\s+)+|the\\s+(?:(?:system|hidden|secret|internal|developer)\\s+)+))(?:prompt|instructions?|message|rules|configuration|guidelines)\\b` },
  { id: 'repeat-above', anchors: 'repeat print output copy echo beginning', kind: 'extraction', weight: 1.1, re: `(?:repeat|print|output|copy|echo)\\s+(?:all\\s+|everything\\s+|the\\s+)?(?:words|text|everything|lines?|content|sentences?)\\s+(?:above|before|preceding|prior)\\b|beginning\\s+with\\s+["'“]?you\\s+are\\b` },
  { id: 'your-instructions', anchors: 'told instructed programmed instructions initial original', kind: 'extraction', weight: 1.0, re: `(?<=\\bwhat\\s+(?:were|are)\\s+(?:you|your)\\s+)(?:told|instructed|programmed|initial\\s+instructions|instructions|original\\s+instructions)\\b` },
  { id: 'mentions-prompt', anchors: 'system prompt', kind: 'extraction', weight: 0.2, re: `system\\s+prompt\\b|prompt[\\s_-]?(?:texts?|texte)\\b` },
  { id: 'written-above', anchors: 'written word words sentence sentences line lines paragraph paragraphs', kind: 'extraction', weight: 1.1, re: `(?<=\\b(?:what|which)\\s+(?:is|was|are|were)\\s+)written\\s+(?:above|before|at\\s+the\\s+(?:beginning|start|top))\\b|(?<=\\b(?:what|which)\\s+(?:is|was|are|were)\\s+the\\s+(?:\\d+\\s+|first\\s+|last\\s+|previous\\s+)?)(?:words?|sentences?|lines?|paragraphs?)\\s+(?:before|above|preceding)\\b` },
  // fake chat delimiters
  { id: 'chat-tokens', gates: '<| [inst [/inst <<sys _of_turn>', kind: 'delimiter', weight: 1.3, re: `<\\|(?:im_start|im_end|system|user|assistant|endoftext|end|eot_id|start_header_id|end_header_id)\\|>|\\[/?inst\\]|<</?sys>>|<start_of_turn>|<end_of_turn>` },
  { id: 'fake-role-header', anchors: 'system developer admin administrator root instruction instructions new response', kind: 'delimiter', weight: 0.7, untrustedWeight: 1.2, re: `(?<=(?:^|\\n)[ \\t]*(?:#{2,}|\\*\\*|\\[|<)?[ \\t]*)(?:system|developer|admin|administrator|root)[ \\t]*(?:prompt|message|instructions?|override|note)?[ \\t]*(?:\\]|>|\\*\\*)?[ \\t]*:|(?<=</?)(?:system|instructions?|admin)>|(?<=(?:^|\\n)[ \\t]*#{2,}[ \\t]*)(?:instructions?|new task|response)\\b` },
  { id: 'fake-turn', anchors: 'human user assistant ai', kind: 'delimiter', weight: 0.6, untrustedWeight: 1.0, re: `(?<=(?:^|\\n)[ \\t]*)(?:human|user|assistant|ai)[ \\t]*:[ \\t]*\\S[\\s\\S]{0,400}?\\n[ \\t]*(?:human|user|assistant|ai)[ \\t]*:` },
  { id: 'end-of-context', anchors: 'end prompt context document input', kind: 'delimiter', weight: 0.7, untrustedWeight: 1.2, re: `end\\s+of\\s+(?:the\\s+)?(?:prompt|context|document|input|instructions|system\\s+prompt)\\b|(?:prompt|context|document|input)\\s+ends?\\s+here\\b` },
  // instructions aimed at the assistant inside content (indirect injection); strong only for untrusted text
  { id: 'addressed-to-ai', anchors: 'dear attention note hey hello hi ai assistant language llm chatbot', kind: 'indirect', weight: 0.2, untrustedWeight: 1.2, re: `(?:dear|attention|note\\s+to(?:\\s+the)?|hey|hello|hi)\\s+${AI}\\b|(?<=\\b(?:the|any)\\s+)(?:ai|assistant|language\\s+model|llm|chatbot)\\s+(?:reading|processing|summari[sz]ing|should|must|will|is\\s+instructed)\\b` },
  { id: 'in-your-response', anchors: 'response responses reply replies answer answers output summary code solution algorithm implementation codebase program script', kind: 'indirect', weight: 0.05, untrustedWeight: 1.2, re: `(?<=\\b${INTO}\\s+your\\s+)(?:response|responses|reply|replies|answer|answers|output|summary|code|solution|algorithm|implementation|codebase|program|script)\\b` },
  { id: 'modify-response', anchors: 'response reply answer output message text', kind: 'indirect', weight: 0.05, untrustedWeight: 1.2, re: `(?<=\\b${REWORK}\\s+(?:your|every|each|all\\s+(?:of\\s+)?your)\\s+)(?:response|reply|answer|output|message|text)\\b|(?<=\\brepresent\\s+your\\s+)(?:response|reply|answer|output)\\b|(?<=\\byour\\s+)(?:response|reply|answer|output)\\s+(?:should|must|needs\\s+to|has\\s+to)\\b|(?<=\\byour\\s+)(?:responses?|reply|replies|answers?|output|message)\\s+(?:(?:in|into|using|with)\\s+(?:an?\\s+)?(?:${OUTPUT_FORMS}|base\\s?\\d+|reverse\\s+\\w+|\\w+\\s+(?:encoding|cipher|code))\\b|backwards?\\b|reversed\\b)` },
  // the same aimed at "the" output: ordinary in a user's own request, suspicious inside content
  { id: 'the-response', anchors: 'response responses reply replies answer answers output summary code solution algorithm implementation codebase program script message text', kind: 'indirect', weight: 0.02, untrustedWeight: 1.2, re: `(?<=\\b${INTO}\\s+the\\s+)(?:response|responses|reply|replies|answer|answers|output|summary|code|solution|algorithm|implementation|codebase|program|script)\\b|(?<=\\b${REWORK}\\s+the\\s+)(?:response|reply|answer|output|message|text)\\b` },
  { id: 'reply-in', anchors: 'reply respond answer write', kind: 'indirect', weight: 0.05, untrustedWeight: 1.2, re: `(?:reply|respond|answer|write)\\s+(?:only\\s+|back\\s+)?(?:in|using|with)\\s+(?:an?\\s+)?${OUTPUT_FORMS}\\b` },
  { id: 'imperative-in-content', gates: '.', kind: 'indirect', weight: 0, untrustedWeight: 0.6, re: `(?:^|[.!?:]\\s+|\\n\\s*)(?:summari[sz]e|describe|analy[sz]e|explain|list|compose|generate|translate|suggest|recommend|calculate|classify|compare|outline|draft|provide|write|create|determine|identify|evaluate|assess|predict|estimate|automate|rename|tell\\s+me|give\\s+me|show\\s+me|help\\s+me|what\\s+are\\s+the|how\\s+can\\s+i|how\\s+(?:does|do|did|have|has|could|would|should|might)|why\\s+(?:does|do|did|is|are|has|have)|can\\s+you|is\\s+this\\s+(?:feedback|review|comment|sentence|statement|text|message))\\s+\\w+` },
  { id: 'embed-code', anchors: 'code snippet script line block function excerpt section segment', kind: 'indirect', weight: 0.3, untrustedWeight: 1.2, re: `(?<=\\b(?:incorporat|embed|includ|insert|introduc|add|integrat|inject|append|assimilat|implant|weav|infus|blend|plac|merg)\\w*\\s+(?:the\\s+|this\\s+)?(?:following|below|subsequent|given|provided|attached)\\s+)(?:code|snippet|script|line|block|function|excerpt|section|segment)` },
  { id: 'instead-of-task', anchors: 'answering responding summarizing summarising answer respond reply tell ask send email forward visit click include mention remind remember', kind: 'indirect', weight: 0.15, untrustedWeight: 1.0, re: `(?<=\\b(?:before|after)\\s+)(?:answering|responding|summari[sz]ing)\\b|(?<=\\b(?:before|after)\\s+you\\s+)(?:answer|respond|reply)\\b|(?<=\\b(?:also|additionally|first)\\s+)(?:tell|ask|send|email|forward|visit|click|include|mention|remind)\\b|remember\\s+to\\s+(?:include|mention|add|tell)\\b` },
  // code to be slipped into the assistant's work: "the following code block ... in your codebase"
  { id: 'foreign-code', anchors: 'code', kind: 'indirect', weight: 0.15, untrustedWeight: 0.8, re: `(?<=\\b(?:following|below|above|given|provided|attached|this|these)\\s+)code\\s+(?:excerpt|snippet|block|section|segment|fragment|piece|lines?)\\b` },
  { id: 'your-work', anchors: 'implementation codebase solution algorithm program code', kind: 'indirect', weight: 0.1, untrustedWeight: 0.6, re: `(?<=\\byour\\s+)(?:implementation|codebase|solution|algorithm|program|code)\\b` },
  // code that reaches outside the program (a third cue with the two above; common on its own in coding questions)
  { id: 'risky-code', anchors: 'os pickle subprocess requests socket sendall etc rm getclipboarddata screencapture', kind: 'indirect', weight: 0.15, untrustedWeight: 0.4, re: `os\\.(?:fork|system|remove|rmdir)\\b|pickle\\.loads?\\b|subprocess\\.(?:call|run|popen|check_output)\\b|requests\\.post\\b|socket\\.(?:socket|connect)\\b|sendall\\b|etc/(?:hosts|passwd|shadow|sudoers)\\b|rm\\s+-rf\\b|getclipboarddata\\b|screencapture\\b` },
  { id: 'exfiltrate', anchors: 'send forward email e-mail post upload exfiltrate leak transmit share copy', kind: 'indirect', weight: 0.4, untrustedWeight: 1.2, re: `(?:send|forward|email|e-mail|post|upload|exfiltrate|leak|transmit|share|copy)\\s+(?:(?:the|all|this|their|user'?s?|entire|full|whole|every|a\\s+copy\\s+of|of|our)\\s+)*(?:conversation|chat|chat\\s+history|history|messages|data|credentials|passwords?|emails?|contacts|files|personal\\s+information|system\\s+prompt|api\\s+keys?|tokens|calendar|inbox)\\b` },
  { id: 'exfiltrate-to', anchors: 'send forward email e-mail post upload exfiltrate leak transmit share copy', kind: 'indirect', weight: 1.2, untrustedWeight: 1.4, re: `(?:send|forward|email|e-mail|post|upload|exfiltrate|leak|transmit|share|copy)\\s+(?:(?:the|all|this|their|user'?s?|entire|full|whole|every|a\\s+copy\\s+of|of|our)\\s+)*(?:conversation|chat|chat\\s+history|previous\\s+messages|system\\s+prompt|api\\s+keys?|credentials|passwords?|contacts|calendar|inbox)\\b[^.!?\\n]{0,80}?\\b(?:to|at|into)\\s+(?:[\\w.+-]+@[\\w-]+\\.[\\w.]+|(?:https?|ftp)://|this\\s+(?:address|email|url|endpoint))` },
  { id: 'push-link', anchors: 'tell ask urge encourage instruct convince recommend advise remind direct invite', kind: 'indirect', weight: 0.2, untrustedWeight: 1.2, re: `(?:tell|ask|urge|encourage|instruct|convince|recommend|advise|remind|direct|invite)\\s+(?:that\\s+)?(?:the\\s+|any\\s+|all\\s+)?(?:user|users|reader|readers|visitor|visitors|customer|customers|them|whoever|people|everyone|recipient)\\b[^.!?\\n]{0,80}?\\b(?:visit|click|go\\s+to|open|log\\s*in|sign\\s+in|download|install|run|enter|verify|call|buy)\\b` },
  { id: 'insert-link', anchors: 'include insert add append put embed', kind: 'indirect', weight: 0.05, untrustedWeight: 1.0, re: `(?:include|insert|add|append|put|embed)\\s+(?:the\\s+|this\\s+|a\\s+|following\\s+)*(?:link|url|hyperlink|image)\\b[^.!?\\n]{0,60}?(?:https?|ftp)://` },
  { id: 'ai-colon', anchors: 'ai assistant model chatbot llm', kind: 'indirect', weight: 0.2, untrustedWeight: 1.2, re: `(?<=(?:^|[.!?:;\\]\\[(){}"]\\s*|\\n\\s*|\\b(?:p\\.s\\.|note|instruction|message|request)\\s+(?:to|for)\\s+(?:the\\s+|any\\s+)?))(?:ai|ai\\s+assistant|assistant|model|language\\s+model|chatbot|llm)(?:\\s*[,:]|\\s+(?:reading|processing|summari[sz]ing)\\b)` },
  { id: 'exfiltrate-md', gates: '![', kind: 'indirect', weight: 0.6, untrustedWeight: 1.2, re: `!\\[[^\\]]{0,100}\\]\\(https?://[^)\\s]{1,300}[?&=]` },
];


/** Patterns are written for normalized text: fold their accented literals the same way (ü → u, é → e). */
const source = (re: string): string => normalizeText(re).text;

/** Anchor word → the sticky patterns to try at that word. */
const BY_ANCHOR = new Map<string, { signal: Signal; re: RegExp }[]>();
/** Patterns that run over the whole text when one of their gate substrings occurs. */
const GATED: { signal: Signal; gates: string[]; re: RegExp }[] = [];
for (const signal of SIGNALS) {
  if (signal.anchors) {
    const re = new RegExp(source(signal.re), 'y');
    for (const a of normalizeText(signal.anchors).text.split(' ')) {
      const list = BY_ANCHOR.get(a) ?? [];
      list.push({ signal, re });
      BY_ANCHOR.set(a, list);
    }
  }
  if (signal.gates) GATED.push({ signal, gates: signal.gates.split(' '), re: new RegExp(source(signal.re), 'g') });
}
/** Any gate substring at all: one pass that lets ordinary text skip every gated pattern. */
const ANY_GATE = new RegExp([...new Set(GATED.flatMap((g) => g.gates.map((x) => x.toLowerCase())))].map(escapeRegex).join('|'));

/** Words that, rot13-ed or reversed, are instruction words: seeing one makes that transformation worth a rescan. */
const HINTS = new Map<string, 'rot13' | 'reversed'>([...ROT13_HINTS.map((w) => [w, 'rot13'] as const), ...REVERSED_HINTS.map((w) => [w, 'reversed'] as const)]);

function wordHash(s: string, start: number, end: number): number {
  let h = 0;
  for (let i = start; i < end; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}
/** Hashes of the anchor and hint words: the word loop rejects almost every word with one integer set lookup. */
const ANCHOR_HASHES = new Set<number>([...BY_ANCHOR.keys(), ...HINTS.keys()].map((w) => wordHash(w, 0, w.length)));
/** Hashes of the lexicon's ASCII verbs (their first PREFIX letters): seeing one makes the clause lexicon run. */
const LEXICON_HASHES = new Set<number>([...ASCII_VERB_PREFIXES].map((w) => wordHash(w, 0, w.length)));
/** The low 16 bits of both hash sets: one array read rejects nearly every ordinary word before any set lookup. */
const ANCHOR_BIT = 1;
const LEXICON_BIT = 2;
const HASH_BITS = new Uint8Array(65536);
for (const h of ANCHOR_HASHES) HASH_BITS[h & 0xffff] |= ANCHOR_BIT;
for (const h of LEXICON_HASHES) HASH_BITS[h & 0xffff] |= LEXICON_BIT;

const DECODED_HINT = /\b(?:base64|base\s?64|decode|decoded|decipher|rot13|rot-13|caesar|hex|hexadecimal|cipher|encoded|reverse|reversed|backwards?|spelled)\b/;

/** Lower case with the same length as the input (a few characters, e.g. U+0130, lower-case to two units), so indexes stay valid. */
function lowerSameLength(t: string): string {
  const lower = t.toLowerCase();
  if (lower.length === t.length) return lower;
  let out = '';
  for (const ch of t) {
    const l = ch.toLowerCase();
    out += l.length === ch.length ? l : ch;
  }
  return out;
}

/** Word characters of the lower-cased text by UTF-16 unit: 1 letter, 2 digit, 3 digit used as a leet letter, 0 not a word character. */
const WORD_CODE = new Uint8Array(65536);
for (let c = 97; c <= 122; c++) WORD_CODE[c] = 1;
for (let c = 0xc0; c <= 0x24f; c++) WORD_CODE[c] = 1;
for (let c = 48; c <= 57; c++) WORD_CODE[c] = 2;
for (const d of '013457') WORD_CODE[d.charCodeAt(0)] = 3;

const DEFAULT_THRESHOLD = 0.5;
/** Maps the evidence to 0..1: one strong signal (>= 1) alone, or two independent cues, reach 0.5. */
const SCORE_SCALE = 1.6;
/** A signal this heavy decides alone: an imperative with its target (instructions, system prompt, the conversation). */
const STRONG = 1;
/** What a single cue counts for: cues alone never decide, two separate ones may. */
const LONE_CUE = 0.4;
/** How deep a decoded text is decoded again (base64 of rot13 …). */
const MAX_DEPTH = 2;

interface Fired {
  id: string;
  kind: Kind;
  weight: number;
  start: number;
  end: number;
}

type FiredMap = Map<string, Fired>;

interface ScanState {
  untrusted: boolean;
  /** Signals from here on are inside content the user pasted (an e-mail, a page): weighed as untrusted. */
  docStart: number;
  fired: FiredMap;
  hints: { rot13: boolean; reversed: boolean; spaced: boolean; joined: boolean; leet: boolean; lexicon: boolean };
  /** Where a word is split in two by one space or hyphen ("ig nore", "prev-ious"): the separators' indexes. */
  splits: number[];
}

function fire(st: ScanState, s: Signal, start: number, end: number): void {
  if (st.fired.has(s.id)) return;
  const untrusted = st.untrusted || start >= st.docStart;
  const weight = untrusted && s.untrustedWeight !== undefined ? s.untrustedWeight : s.weight;
  st.fired.set(s.id, { id: s.id, kind: s.kind, weight, start, end });
}

/** Letters spelled out one by one ("s a y t h a t"): this many in a row are decoded and rescanned. */
const MIN_SPACED_LETTERS = 6;
/** A word this long may be words run together (camelCase, "ignorepreviousinstructions"). */
const RUN_TOGETHER_LENGTH = 12;
/** Split words rejoined at most: a text full of them is not hiding one instruction. */
const MAX_SPLITS = 16;

/**
 * Where the word ending at `end` is joined to the next, else -1: by dots or semicolons ("a.b", "a ; b"), or by one
 * to four other characters (isJoiner: "a|b", "a/b", an emoji; digits make one long word). Returns the next word's start.
 */
function joinAfter(text: string, end: number): number {
  let k = end;
  while (k - end < 4 && isJoiner(text.charCodeAt(k))) k++;
  if (k > end && k < text.length && WORD_CODE[text.charCodeAt(k)] !== 0) return k;
  k = skipBlanks(text, end);
  if (!isDotOrSemicolon(text.charCodeAt(k))) return -1;
  while (isDotOrSemicolon(text.charCodeAt(k))) k++;
  k = skipBlanks(text, k);
  return k < text.length && WORD_CODE[text.charCodeAt(k)] !== 0 ? k : -1;
}

/**
 * A character that may join two words without a space: not a word character, a space, a hyphen or an apostrophe
 * (prose), or an underscore (snake_case, read by the emphasis decoding). NaN past the end is not.
 */
function isJoiner(c: number): boolean {
  return c === c && WORD_CODE[c] === 0 && c > 32 && c !== 45 && c !== 39 && c !== 95 && c !== 0x2019 && c !== 0x85 && c !== 0xa0 && !(c >= 0x2000 && c <= 0x200a) && c !== 0x3000;
}

function isDotOrSemicolon(c: number): boolean {
  return c === 46 || c === 59;
}

/** The first index from `k` that is not a space or tab. */
function skipBlanks(text: string, k: number): number {
  while (text.charCodeAt(k) === 32 || text.charCodeAt(k) === 9) k++;
  return k;
}

/**
 * One loop over the lower-cased text: anchor words (integer hash, then the map) run their sticky patterns in
 * place; words whose rot13 or reversal is an instruction word, words spelled out letter by letter and words
 * mixing letters with leet digits are noted as hints for the rescans.
 */
function scanWords(text: string, st: ScanState): void {
  const n = text.length;
  let spaced = 0;
  let joins = 0;
  let joinedAt = -1;
  let lastWordEnd = -2;
  let lastWordStart = -2;
  let lastHash = 0;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (WORD_CODE[c] === 0) {
      i++;
      continue;
    }
    let h = 0;
    let prefix = 0;
    let j = i;
    let letters = false;
    let digits = false;
    // The hash of this word appended to the one before, when one space or hyphen parts them: "ig nore" reads "ignore".
    const sep = text.charCodeAt(i - 1);
    const splittable = i - lastWordEnd === 1 && (sep === 32 || sep === 45) && lastWordEnd - lastWordStart >= 2;
    let joined = lastHash;
    while (j < n) {
      const d = text.charCodeAt(j);
      const kind = WORD_CODE[d];
      if (kind === 0) break;
      if (kind === 1) letters = true;
      else if (kind === 3) digits = true;
      h = (Math.imul(h, 31) + d) | 0;
      joined = (Math.imul(joined, 31) + d) | 0;
      j++;
      if (j - i === PREFIX) prefix = h;
    }
    if (splittable && j - i >= 2 && j - lastWordStart <= 17 && st.splits.length < MAX_SPLITS && (HASH_BITS[joined & 0xffff] & ANCHOR_BIT) !== 0 && ANCHOR_HASHES.has(joined)) {
      const whole = text.slice(lastWordStart, lastWordEnd) + text.slice(i, j);
      if (BY_ANCHOR.has(whole) || HINTS.has(whole)) st.splits.push(i - 1);
    }
    lastWordStart = i;
    lastHash = h;
    if (!st.hints.lexicon) {
      const lexiconKey = j - i >= PREFIX ? prefix : h;
      if ((HASH_BITS[lexiconKey & 0xffff] & LEXICON_BIT) !== 0 && LEXICON_HASHES.has(lexiconKey)) st.hints.lexicon = true;
    }
    if (letters && digits) st.hints.leet = true;
    if (j - i === 1 && letters) {
      spaced = j - 1 - lastWordEnd <= 2 ? spaced + 1 : 1;
      if (spaced >= MIN_SPACED_LETTERS) st.hints.spaced = true;
    } else spaced = 0;
    if (!st.hints.joined) {
      if (j - i >= RUN_TOGETHER_LENGTH) st.hints.joined = true;
      // Three words in a row joined by dots or semicolons.
      joins = i === joinedAt ? joins + 1 : 0;
      const next = joinAfter(text, j);
      if (next !== -1 && joins >= 1) st.hints.joined = true;
      joinedAt = next;
    }
    lastWordEnd = j;
    if (j - i <= 16 && (HASH_BITS[h & 0xffff] & ANCHOR_BIT) !== 0 && ANCHOR_HASHES.has(h)) {
      const word = text.slice(i, j);
      const hint = HINTS.get(word);
      if (hint) st.hints[hint] = true;
      for (const { signal, re } of BY_ANCHOR.get(word) ?? []) {
        if (st.fired.has(signal.id)) continue;
        re.lastIndex = i;
        const m = re.exec(text);
        if (m) fire(st, signal, i, i + m[0].length);
      }
    }
    i = j;
  }
}

function scanGated(lower: string, cased: string, st: ScanState): void {
  if (!ANY_GATE.test(lower)) return;
  for (const { signal, gates, re } of GATED) {
    if (st.fired.has(signal.id)) continue;
    if (!st.untrusted && st.docStart >= lower.length && signal.untrustedWeight !== undefined && signal.weight === 0) continue;
    const text = signal.cased ? cased : lower;
    if (!gates.some((g) => text.includes(g))) continue;
    re.lastIndex = 0;
    const m = re.exec(text);
    if (m) fire(st, signal, m.index, m.index + m[0].length);
  }
}

/**
 * Where pasted content starts in a user's own message: after a line that introduces it ("Summarize this
 * email:", "Here is the page I copied"), or at e-mail headers, quoted lines or a --- fence. Instructions to the
 * assistant after that point count as they would in a tool result.
 */
const DOC_INTRO = /\b(?:summari[sz]e|translate|proofread|classify|review|check|analy[sz]e|extract[^\n]{0,40}\bfrom|what(?:'s|\s+is)[^\n]{0,30}\bof|here(?:'s|\s+is|\s+are))\b[^\n]{0,80}?\b(?:this|these|the\s+following|below|my|a|the)\b[^\n]{0,60}?\n/;
const DOC_MARK = /(?:^|\n)[ \t]*(?:(?:from|subject|to|date|sent|cc)[ \t]*:|---+|===+|```|>)/;

function documentStart(lower: string): number {
  if (!lower.includes('\n')) return lower.length;
  // A document is introduced near the start of a message; looking further costs time on every long message.
  const intro = DOC_INTRO.exec(lower.length > 2000 ? lower.slice(0, 2000) : lower);
  const mark = DOC_MARK.exec(lower);
  return Math.min(intro ? intro.index + intro[0].length : lower.length, mark ? mark.index : lower.length);
}

const NON_ASCII_LETTER = /[\u00c0-\uffff]/;

function scanPlain(t: string, lower: string, st: ScanState): void {
  scanWords(lower, st);
  let folded = lower;
  if (st.hints.leet) {
    folded = foldLeet(lower);
    scanWords(folded, st);
  }
  scanGated(folded, t, st);
  // The clause lexicon: text in another script, or an ASCII verb of the lexicon seen by the word loop.
  if (!st.hints.lexicon && !NON_ASCII_LETTER.test(folded)) return;
  for (const hit of lexiconHits(folded)) {
    fire(st, { id: hit.id, kind: hit.kind === 'extraction' ? 'extraction' : hit.kind === 'exfiltration' ? 'indirect' : 'override', weight: hit.weight, re: '' }, hit.start, hit.end);
  }
}

interface Evidence {
  sum: number;
  jailbreak: number;
  indirect: number;
  start: number;
  end: number;
  reasons: string[];
}

/**
 * Strong signals count in full. Cues that overlap (one phrase firing two signals) count once, at their
 * largest weight; a lone cue counts LONE_CUE of its weight, so it never decides alone.
 */
function weigh(fired: Fired[], length: number): Evidence {
  const ev: Evidence = { sum: 0, jailbreak: 0, indirect: 0, start: length, end: 0, reasons: [] };
  const cues: Fired[] = [];
  for (const f of fired) {
    if (f.weight <= 0) continue;
    if (f.weight >= STRONG) {
      ev.sum += f.weight;
      if (f.kind === 'jailbreak') ev.jailbreak += f.weight;
      if (f.kind === 'indirect') ev.indirect += f.weight;
    } else cues.push(f);
    if (f.start < ev.start) ev.start = f.start;
    if (f.end > ev.end) ev.end = f.end;
  }
  cues.sort((a, b) => a.start - b.start);
  const clusters: Fired[] = [];
  for (const c of cues) {
    const last = clusters[clusters.length - 1];
    if (last && c.start < last.end) {
      if (c.weight > last.weight) clusters[clusters.length - 1] = { ...c, start: last.start, end: Math.max(last.end, c.end) };
      else last.end = Math.max(last.end, c.end);
    } else clusters.push({ ...c });
  }
  const factor = clusters.length >= 2 || ev.sum > 0 ? 1 : LONE_CUE;
  for (const c of clusters) {
    ev.sum += c.weight * factor;
    if (c.kind === 'jailbreak') ev.jailbreak += c.weight * factor;
    if (c.kind === 'indirect') ev.indirect += c.weight * factor;
  }
  ev.reasons = fired
    .filter((f) => f.weight > 0)
    .sort((a, b) => b.weight - a.weight)
    .map((f) => f.id);
  return ev;
}

/** `t` with its split words rejoined (the separators at `splits` dropped), as one candidate to rescan. */
function rejoined(t: string, splits: readonly number[]): Decoded[] {
  if (splits.length === 0) return [];
  const sorted = [...new Set(splits)].sort((a, b) => a - b);
  let text = '';
  let from = 0;
  for (const at of sorted) {
    text += t.slice(from, at);
    from = at + 1;
  }
  text += t.slice(from);
  return [{ how: 'split', start: sorted[0], end: sorted[sorted.length - 1] + 1, text }];
}

/** Scans `t`, then what it decodes to; returns the evidence with decoded findings folded in. */
function evidenceOf(t: string, untrusted: boolean, invisibleCount: number, depth: number): Evidence {
  const lower = lowerSameLength(t);
  const st: ScanState = {
    untrusted,
    docStart: untrusted ? 0 : documentStart(lower),
    fired: new Map(),
    hints: { rot13: false, reversed: false, spaced: false, joined: false, leet: false, lexicon: false },
    splits: [],
  };
  scanPlain(t, lower, st);
  const fired = [...st.fired.values()];
  if (invisibleCount >= 3) {
    fired.push({ id: 'invisible-chars', kind: 'override', weight: invisibleCount >= 10 ? 1.0 : 0.4, start: 0, end: t.length });
  }
  if (depth < MAX_DEPTH) {
    let hinted: boolean | undefined;
    for (const d of [...decodeCandidates(t, st.hints), ...rejoined(t, st.splits)]) {
      const inner = evidenceOf(d.text, untrusted, 0, depth + 1);
      if (inner.sum <= 0) continue;
      hinted ??= DECODED_HINT.test(lower);
      // What was hidden counts as much as it would in plain text, and more when the text asks to decode it.
      const weight = inner.sum * (inner.sum >= STRONG ? 1 : 0.8) + (hinted ? 0.4 : 0.2);
      fired.push({ id: `${d.how}:${inner.reasons[0]}`, kind: inner.jailbreak * 2 > inner.sum ? 'jailbreak' : 'override', weight: Math.max(weight, inner.sum >= 0.433 ? STRONG : 0), start: d.start, end: d.end });
    }
  }
  return weigh(fired, t.length);
}

export function createInjectionDetector(defaultThreshold = DEFAULT_THRESHOLD): Detector {
  return {
    id: 'injection',
    entities: INJECTION_ENTITIES,
    scan(normalized: NormalizedText, opts?: ScanOptions): Match[] {
      const nt = foldMixedScriptWords(normalized);
      const t = nt.text;
      const untrusted = opts?.untrusted === true;
      const ev = evidenceOf(t, untrusted, nt.invisibleCount, 0);
      if (ev.sum <= 0) return [];
      const score = Math.round((1 - Math.exp(-SCORE_SCALE * ev.sum)) * 1000) / 1000;
      if (score < (opts?.threshold ?? defaultThreshold)) return [];
      // Third-party content is indirect injection whatever it tries; in the user's own text the dominant kind names it.
      const entity = untrusted || ev.indirect * 2 > ev.sum ? 'INDIRECT_INJECTION' : ev.jailbreak * 2 > ev.sum ? 'JAILBREAK' : 'PROMPT_INJECTION';
      if (!wanted(opts, entity)) return [];
      return [{ detector: 'injection', entity, start: nt.toOriginal(ev.start), end: nt.toOriginalEnd(ev.end), score, reason: ev.reasons.join(',') }];
    },
    // The decision is over the whole text, not a span that a later token could complete: a stream rescans the
    // window of recent text as it grows instead of holding any back.
    pendingTail: () => 0,
    lookback: DOCUMENT_WINDOW,
    scope: 'document',
  };
}
