/**
 * Names of people and postal addresses, opt-in PII entities (PERSON, STREET_ADDRESS) found by heuristics, not a
 * model: a person's name after an honorific, a form label ("Name:"), an introduction ("my name is", "Dear"), or
 * starting with a common given name (a gazetteer of given names from many languages) or a middle initial; a street
 * line by its street word (English suffixes, continental street words and suffixes) and house number, post-office
 * and military boxes, apartment and suite numbers, extended over the city, postcode and country parts that follow.
 * Everything is case-aware and works on normalised text (accents folded), one regex pass per form.
 */

type Emit = (entity: string, start: number, end: number, score: number) => void;

/** A capitalised word (letters of any script, apostrophes and inner hyphens) and a single initial. */
const CAP = String.raw`\p{Lu}[\p{Ll}\p{M}'\u2019]{1,24}(?:-\p{Lu}?[\p{Ll}\p{M}'\u2019]{1,24})?`;
const INITIAL = String.raw`\p{Lu}\.?`;
/** A name: a capitalised word, then up to three more capitalised words or initials, on one line. */
const NAME = `${CAP}(?:[ \\t]{1,2}(?:${CAP}|${INITIAL}(?=[ \\t])))*`;
/** Any word, for labelled fields whose values may be written in lower case ("Name: lena andersson"). */
const ANY_NAME = String.raw`[\p{L}][\p{L}\p{M}'\u2019.-]{0,24}(?:[ \t]{1,2}[\p{L}][\p{L}\p{M}'\u2019.-]{0,24}){0,3}`;

const HONORIFIC = new RegExp(String.raw`(?<![\p{L}\p{N}])(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Mister|Madam|Madame|Herr|Frau|Mme|Mlle|Sr|Sra|Srta|Signor|Signora|mr|mrs|ms|dr|MR|MRS|MS|DR)\.?[ \t]{1,2}(${NAME})`, 'gu');
/** Form fields and headers whose value is a person's name. */
const LABEL = new RegExp(
  String.raw`(?<![\p{L}\p{N}])(?:full[ _]?name|first[ _]?name|last[ _]?name|given[ _]?name|family[ _]?name|surname|name|patient|customer|client|account[ _]holder|card[ _]?holder|holder|employee|applicant|recipient|sender|attn|attention|signed|passenger|guest|beneficiary|tenant|directed by|written by|author)[ \t]*[:=][ \t]*(${ANY_NAME})(?=[ \t]*(?:\r?\n|$|[,;|(<]|[ \t]{2}))`,
  'giu',
);
/** Keywords matched in any case while the name after them stays case-sensitive (no `i` flag). */
function anyCase(words: string): string {
  return words.replace(/[a-z]/g, (c) => `[${c}${c.toUpperCase()}]`);
}
/** Introductions, greetings and sign-offs followed by a capitalised name. */
const INTRODUCTION = new RegExp(
  String.raw`(?<![\p{L}\p{N}])(?:${anyCase("my name is|my name's|name is|i am called|i'm called|call me|(?:he|she|they) (?:is|was|are|were) called|named|dear|hi|hello|hey|thanks|thank you|regards|sincerely|cheers|best wishes|kind regards|yours truly")})[ \t]*,?[ \t]*\n?[ \t]*(${NAME})`,
  'gu',
);
/** Two or three capitalised words with a middle initial ("Fredrik L Sommerseth", "Chise T. Horiguchi"). */
const WITH_INITIAL = new RegExp(String.raw`(?<![\p{L}\p{N}])(${CAP}[ \t]{1,2}\p{Lu}\.?[ \t]{1,2}${CAP})(?![\p{L}\p{N}])`, 'gu');
/** A capitalised word followed by a surname: checked against the given-name gazetteer. */
const CAPITALISED = new RegExp(String.raw`(?<![\p{L}\p{N}])${CAP}(?![\p{L}\p{N}])`, 'gu');
const SURNAME_AFTER = new RegExp(String.raw`^(?:[ \t]{1,2}${INITIAL})?[ \t]{1,2}(${CAP})(?![\p{L}\p{N}])`, 'u');

/**
 * Common given names across languages (English, German, Dutch, Nordic, Finnish, French, Spanish, Portuguese,
 * Italian, Slavic, Baltic, Hungarian, Greek, Turkish, Arabic, Indian, Chinese, Japanese, Korean), folded to ASCII.
 * Names that are also ordinary English words (May, Will, Mark, Grace, Rose, Bill, …) count only with a surname.
 */
const GIVEN_NAMES = new Set(
  `aaron abdul abdullah adam adrian agnes ahmed ahmet aiko aino aisha akira alan albert alberto aleksandr aleksandra alex
  alexander alexandra alexandre alfred ali alice alicia alina alma amanda amber amelia amir amy ana andrea andreas andrei
  andrew andrzej angela angelika anita ann anna anne annika antoine anton antonio anja arjun arne arthur astrid aurora
  barbara beatriz ben benjamin bernard bertram birgit bjorn boris brandon brenda brian bruno camila carl carla carlos
  carmen carol caroline catherine cecilia charles charlotte chen chiara chloe chris christian christina christine christopher
  claire clara claudia cleopatra colin cristina dagmar daniel daniela david deborah denis diana diego dimitri dmitry
  dominik donald dorothy duc edward elena elias elisa elisabeth elizabeth ella ellen emil emilia emily emma enrique eric
  erik erika ernst esther eva evelyn ewa ewan fabian fatima felix fernando filip fiona francesca francesco francisco
  franciska frank franz fredrik frida gabriel gabriela gareth george georg gerhard giorgio giovanni giulia giuseppe gonzalo
  greta gunnar gustav halldor hana hanna hannah hans harald harry heinz helen helena henrik henry hiroshi hugo ian ibrahim
  ida igor ines ingrid irena irene isabel isabella ivan jakob james jan jana jane janet jaroslava jason javier jean jennifer
  jens jessica ji jin joanna johan johann johanna john jonas jorge jose josef joseph juan julia julian julie julieta jurgen
  kai karen karin karl katarina katharina katrine kazuki kenji kevin khalid kim kira klaus kristiana kristina kumar lara
  lars laura lea leah lena leon leonardo lili lily linda lisa liu lorenzo louis lucas lucia luis luka lukas magnus maja
  malvina manuel marco marcus margaret margarita maria marie marina mario marta martin mary maria mateo matteo matthew
  mehmet mei michael michal michele miguel mikael mikhail milan min mohamed mohammed monika nadia naomi natalia natasha
  nicholas nicolas niklas nikolai nina noah nora olga oliver olivia omar oscar pablo paolo patricia patrick paul paula
  pedro peter petra philip pierre pietro piotr priya rafael rahul raj ramon raquel rebecca richard robert roberto roman
  rosa ruben rubija ryan sakura samuel sandra sara sarah sebastian sergei sergio shirin simon sofia sophia sophie stefan
  stefano stephanie steven susan svetlana sven tanja tatiana teresa theodore thomas tim timothy tobias tomas tomasz
  ubul ulrich ursula valentina vera veronika victor viktor vincent vladimir walter wei william wojciech xavier yan yasmin
  yuki yulan yuri yusuf zainab zoe zofia abigail adele agata alfie alistair amelie andrea angelo anthony antonia asya
  audrey austin beatrice bella bernadette brigitte bruce caleb calvin cameron carolina cecile celine charlie cody connor
  craig cynthia daisy dana darius dean denise derek dolores dominic dorota douglas dylan edith edgar eileen elaine eleanor
  elsa emilio erin ethan eugene eustachy evan florian frances freya gabrielle gaetane gemma gerald gladys gloria gordon
  gregory gwen harold harriet heather heidi hector helga herbert holly howard imogen irenke isaac isla ivy jacob jacqueline
  jade jaime jasmine jeffrey jeremy jesse joan joel jordan joyce judith justin karim katie keith kelly kenneth kristen
  kurt kyle larry lauren leila leo leonie lewis liam logan lorraine louise lucy luna lydia madeleine malcolm marcela
  margot marion marjorie martha matilda maureen megan melanie melissa mia mildred miriam molly nancy natalie nathan neil
  nicole nigel norman olive oskar owen pamela penelope phoebe poppy rachel ralph raymond renate rhys rita robin roger
  ronald rosalind ruth sabine sally samantha scarlett scott shane sharon sheila shirley sidney stanley stella stuart
  sylvia tara terence tessa tilly tina todd tracy trevor tyler valerie vanessa vivian wanda wayne wendy wislawa yvonne
  zachary`.split(/\s+/),
);
const AMBIGUOUS_GIVEN = new Set(['mark', 'will', 'may', 'june', 'april', 'grace', 'rose', 'bill', 'joy', 'hope', 'faith', 'jack', 'max', 'art', 'page', 'rich', 'victor', 'hunter', 'chase', 'lily', 'jan', 'kim', 'min', 'ji', 'jin', 'ida', 'ian', 'eva', 'vera']);
for (const w of AMBIGUOUS_GIVEN) GIVEN_NAMES.add(w);
/** Capitalised words that are not names ("Anna The …", "Sophie Monday", "Dear Sir", "Hi Team"). */
const NOT_A_NAME = /^(?:Sir|Madam|Madame|Mr|Mrs|Ms|Dr|All|Team|Everyone|Everybody|There|Folks|Guys|Friend|Friends|Colleague|Colleagues|Customer|Customers|Again|Thanks|Thank|Please|Hello|Hi|The|A|An|And|Or|But|Of|In|On|At|To|For|With|From|By|Is|Are|Was|Were|Has|Have|Had|Will|Would|Can|Could|I|We|You|He|She|It|They|This|That|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|January|February|March|April|June|July|August|September|October|November|December|Street|Road|Avenue|Lane|Inc|Ltd|Corp|LLC|GmbH|University|College|School|Hospital|Bank|Group|Company|Street)$/;

/** English street types, full and abbreviated. */
const STREET_TYPE =
  'street|st|avenue|ave|av|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|way|terrace|ter|parkway|pkwy|highway|hwy|circle|cir|square|sq|trail|trl|crescent|cres|close|grove|row|walk|alley|plaza|loop|pike|mews|hill|gardens|green|park|rise|vale|view';
/** Continental street words written before the name ("Rue de Virton", "Via Roma", "ul. Dluga"). */
const STREET_WORD_BEFORE =
  'rue|avenue|av\\.|avda\\.?|avenida|calle|c\\.|carrer|via|viale|piazza|piazzale|corso|largo|vicolo|rua|travessa|praca|praça|chemin|boulevard|bd|allee|allée|impasse|quai|route|ulica|ul\\.|ulitsa|aleja|al\\.|namesti|náměstí|trg|ulice|strada|calea';
/** Continental street suffixes glued to the name ("Pohlstrasse", "Snellmaninkatu", "Semperweg"). */
const STREET_SUFFIX =
  'strasse|straße|straeti|stræti|str\\.|gasse|weg|allee|platz|damm|ufer|chaussee|laan|straat|gracht|plein|steeg|dijk|kade|singel|gade|vej|vaenget|gata|gatan|vagen|vägen|veien|vegen|katu|tie|kuja|polku|tanya|utca|körút|korut|sokak|sokagi|caddesi|bulvar';
const HOUSE = String.raw`\d{1,6}[A-Za-z]?(?:[/-]\d{1,4})?`;
const WORD = String.raw`[\p{L}][\p{L}\p{M}'\u2019.-]{0,24}`;
/** An apartment, suite, unit or floor number: part of an address, or alone. */
const UNIT = String.raw`(?:${anyCase('apt|apartment|suite|ste|unit|flat|floor|fl|room|rm|bldg|building')}|#)\.?[ \t]?#?\d{1,5}[A-Za-z]?`;
/** Street lines. Keywords match in any case; names after them keep their case (no `i` flag). */
const STREET_LINES = [
  // 1668 Glyn St / 3911 fourth avenue / 124 67 Devon Street West / 33 avenue de Provence
  String.raw`${HOUSE}(?:[ \t]{1,2}\d{1,5})?,?[ \t]{1,2}(?:[NSEW]\.?[ \t]{1,2})?(?:${WORD}[ \t]{1,2}){0,3}(?:${anyCase(STREET_TYPE)})\.?(?:[ \t]{1,2}(?:${anyCase('north|south|east|west')}|[NSEW]{1,2})\.?)?(?![\p{L}\p{N}])`,
  String.raw`${HOUSE},?[ \t]{1,2}(?:${anyCase(STREET_WORD_BEFORE)})[ \t]{1,2}(?:${WORD}[ \t]{1,2}){0,3}${WORD}`,
  // Rue de Virton 38 / Via Roma 10 / Avda. Rio Nalon 58
  String.raw`(?:${anyCase(STREET_WORD_BEFORE)})[ \t]{1,2}(?:${WORD}[ \t]{1,2}){0,3}${HOUSE}(?![\p{L}\p{N}])`,
  // Pohlstrasse 9 / C. Beerninckstraat 88 / Harjukuja 54
  String.raw`(?:\p{Lu}\.[ \t]?)?\p{Lu}[\p{Ll}\p{M}-]{1,30}(?:${STREET_SUFFIX})[ \t]{1,2}${HOUSE}(?![\p{L}\p{N}])`,
  // 971 Kesk 53 / 28030 Edeby 55: house number, street, number, with a unit after it
  String.raw`\d{1,6}[ \t]{1,2}(?:${WORD}[ \t]{1,2}){0,2}\p{Lu}[\p{L}\p{M}'\u2019.-]{1,24}[ \t]{1,2}\d{1,5}[A-Za-z]?\.?(?=,?[ \t]*\n?[ \t>]*${UNIT})`,
  // P.O. Box 123 / Postbox 53 / Postfach 12 34 / PSC 0729, Box 5797 / Unit 7349 Box 6067
  String.raw`(?:[Pp]\.?[ \t]?[Oo]\.?[ \t]?${anyCase('box')}|${anyCase('post office box|postbox|postfach|apartado|casilla')}|(?:${anyCase('psc|unit|cmr')})[ \t]\d{3,5},?[ \t]${anyCase('box')})[ \t]{1,2}\d{1,6}(?:[ \t]\d{2,4})?`,
  // APO AE 09012 / FPO AA 68422 / DPO AP 96854 (US military post)
  String.raw`(?:${anyCase('apo|fpo|dpo')})[ \t](?:${anyCase('aa|ae|ap')})[ \t]\d{5}`,
];
const STREET = new RegExp(String.raw`(?<![\p{L}\p{N}])(?:${STREET_LINES.join('|')})`, 'gu');
const UNIT_ALONE = new RegExp(String.raw`(?<![\p{L}\p{N}])${UNIT}(?![\p{L}\p{N}])`, 'gu');
/**
 * What may follow a street line: a unit, a city, "City, ST 12345", "12345 City", a country; each part on the same
 * line after a comma, or on the next line, at most 40 characters, no sentence punctuation.
 */
const NEXT_PART = new RegExp(String.raw`^(?:[ \t]*,[ \t]*|[ \t]*\n[ \t>]*|[ \t]{1,2})(?:${UNIT}|[\p{L}\p{N}(][\p{L}\p{N}\p{M}()'\u2019 .-]{0,38}[\p{L}\p{N})])(?![\p{L}\p{N}])`, 'iu');
const PART_MAX = 3;
const UNIT_START = /^(?:apt|apartment|suite|ste|unit|flat|floor|fl|room|rm|bldg|building|#)\b/i;
/** A city, region, postcode or country: every word capitalised or a number ("Springfield", "IL 62704", "Cyprus (Greek)"). */
const PLACE_PREFIX = /^[\p{Lu}\d(][^\s,]*(?:[ \t]+[\p{Lu}\d(][^\s,]*)*/u;

export function scanNames(t: string, emit: Emit): void {
  const found = (re: RegExp, score: number, check?: (name: string, start: number) => number) => {
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(t)) !== null) {
      const name = trimName(m[1]);
      const start = m.index + m[0].length - m[1].length;
      if (name.length < 2) continue;
      const s = check ? check(name, start) : score;
      if (s > 0) emit('PERSON', start, start + name.length, s);
    }
  };
  found(HONORIFIC, 0.85);
  found(LABEL, 0.8, (name) => (FUNCTION_WORD.test(name) ? 0 : /^[\p{Ll}]/u.test(name) && !name.includes(' ') ? 0.5 : 0.8));
  found(INTRODUCTION, 0.75, (name) => (NOT_A_NAME.test(name.split(/[ \t]/)[0]) ? 0 : isGiven(name.split(/[ \t]/)[0]) || name.includes(' ') ? 0.75 : 0.5));
  found(WITH_INITIAL, 0.7, (name) => (NOT_A_NAME.test(name.split(/[ \t]/)[0]) ? 0 : 0.7));
  CAPITALISED.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = CAPITALISED.exec(t)) !== null) {
    const given = m[0];
    if (!isGiven(given)) continue;
    const after = SURNAME_AFTER.exec(t.slice(m.index + given.length, m.index + given.length + 60));
    if (after && !NOT_A_NAME.test(after[1])) {
      emit('PERSON', m.index, m.index + given.length + after[0].length, 0.75);
      CAPITALISED.lastIndex = m.index + given.length + after[0].length;
    } else if (!AMBIGUOUS_GIVEN.has(given.toLowerCase())) emit('PERSON', m.index, m.index + given.length, 0.55);
  }
}

/** A labelled value in lower case that reads as prose, not a name ("Name: john and his wife"). */
const FUNCTION_WORD = /(?:^|[ \t])(?:and|or|the|a|an|of|his|her|their|my|your|is|are|was|to|for|with|not|none|n\/a|unknown)(?:[ \t]|$)/i;

function isGiven(word: string): boolean {
  return GIVEN_NAMES.has(word.toLowerCase());
}

/** A name ends at its last letter; trailing initials without a surname, and sentence dots, are not part of it. */
function trimName(name: string): string {
  return name.replace(/(?:[ \t]+\p{Lu}\.?)+$/u, '').replace(/[ \t.]+$/, '');
}

export function scanAddresses(t: string, emit: Emit): void {
  STREET.lastIndex = 0;
  let m: RegExpExecArray | null;
  let lastEnd = 0;
  while ((m = STREET.exec(t)) !== null) {
    const end = extendAddress(t, m.index + m[0].length);
    emit('STREET_ADDRESS', m.index, end, 0.8);
    STREET.lastIndex = lastEnd = end;
  }
  UNIT_ALONE.lastIndex = 0;
  while ((m = UNIT_ALONE.exec(t)) !== null) {
    // Units inside a street match were reported with it; a lone "Apt. 022" counts on its own, weakly.
    if (m.index < lastEnd && insideAny(t, m.index)) continue;
    emit('STREET_ADDRESS', m.index, m.index + m[0].length, m[0].startsWith('#') ? 0.3 : 0.5);
  }
}

function insideAny(t: string, at: number): boolean {
  STREET.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = STREET.exec(t)) !== null && m.index <= at) {
    const end = extendAddress(t, m.index + m[0].length);
    if (at < end) return true;
    STREET.lastIndex = end;
  }
  return false;
}

/** The end of an address whose street line ends at `end`: units, city, postcode and country parts that follow. */
export function extendAddress(t: string, end: number): number {
  for (let parts = 0; parts < PART_MAX; parts++) {
    const next = NEXT_PART.exec(t.slice(end, end + 48));
    if (!next) break;
    const part = next[0].replace(/^[\s,>]+/, '');
    if (UNIT_START.test(part)) {
      end += next[0].length;
      continue;
    }
    // The capitalised words and numbers the part starts with ("IL 62704" of "IL 62704 since May").
    const place = PLACE_PREFIX.exec(part)?.[0] ?? '';
    if (place === '' || /[.!?][ \t]/.test(place)) break;
    end += next[0].length - part.length + place.length;
    if (place.length < part.length) break;
  }
  return end;
}

/** Longest single-line name or street match, and the reach of an address's following parts. */
const LINE_HOLD = 160;
const EXTENSION_REACH = 48;

/**
 * Streaming: hold the current line (a name or street line may still grow on it, bounded), and an address that
 * could still take more parts on the following lines.
 */
export function namesPendingTail(text: string, from: number, addresses: boolean): number {
  const n = text.length;
  const lineStart = text.lastIndexOf('\n', n - 1) + 1;
  let holdFrom = Math.max(lineStart, n - LINE_HOLD);
  if (addresses) {
    const windowStart = Math.max(0, n - LINE_HOLD - PART_MAX * EXTENSION_REACH);
    const window = text.slice(windowStart);
    STREET.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = STREET.exec(window)) !== null) {
      const end = extendAddress(window, m.index + m[0].length);
      if (window.length - end <= EXTENSION_REACH && !/\n[ \t]*\n/.test(window.slice(end))) holdFrom = Math.min(holdFrom, windowStart + m.index);
      STREET.lastIndex = end;
    }
  }
  return Math.max(0, n - Math.max(from, holdFrom));
}
