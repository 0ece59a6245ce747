/**
 * Injection in other languages, by clause: an instruction to override or reveal needs its verb and its target
 * in the same clause ("ignore … instructions", "reveal … system prompt", "send … conversation"), in any of the
 * languages below. Words are matched as stems at a word start (Cyrillic, Arabic, Devanagari, Hangul inflect)
 * or as substrings for scripts written without spaces (Chinese, Japanese). Accented Latin words are written
 * without accents because normalize.ts folds them.
 *
 * Languages: Russian, Japanese, Korean, Chinese, Dutch, Polish, Turkish, Arabic, Hindi, German, Spanish,
 * French, Portuguese, Italian, and English paraphrases ("set aside whatever guidance you received").
 */

export type LexiconKind = 'override$' | 'extraction' | 'exfiltration';

interface Rule {
  kind: LexiconKind;
  id: string;
  weight: number;
  verbs: string[];
  targets: string[];
  /** A third word the clause must also hold (exfiltration: where to). */
  also?: string[];
}

/** Stems; "*" at the start of an entry means "anywhere in a word" (for scripts without word breaks). */
const IGNORE = [
  // ru
  'игнорир', 'проигнорир', 'забуд', 'забыв', 'не обращай', 'не обращайте', 'пренебре', 'отбрось', 'отмени',
  // ja
  '*無視', '*忘れ', '*従わな', '*破棄',
  // ko
  '*무시', '*잊어', '*잊고', '*따르지',
  // zh
  '*忽略', '*无视', '*忘记', '*忽视', '*不要遵守', '*不要理会', '*忘掉', '*無視', '*忘記',
  // nl
  'negeer$', 'vergeet$', 'negeren', 'vergeten',
  // pl
  'zignoruj$', 'ignoruj$', 'zapomnij$', 'pomin$',
  // tr
  'yok say', 'gormezden', 'unut$', 'dikkate alma', 'yoksay',
  // ar
  'تجاهل', 'انس', 'إنس', 'اترك', 'أهمل', 'اهمل',
  // hi
  'अनदेखा', 'नज़रअंदाज़', 'नजरअंदाज', 'भूल', 'उपेक्षा',
  // de es fr pt it
  'ignorier', 'vergiss$', 'missacht', 'ignora$', 'ignore$', 'olvida$', 'olvide$', 'descarta$', 'oublie$', 'ignorez$', 'esqueca$', 'esquece$', 'desconsidere', 'dimentica$',
  // en paraphrases
  'disregard$', 'set aside', 'put aside', 'throw out', 'discard$', 'override$', 'overrule$', 'supersede$',
];

const RULE_NOUNS = [
  'инструкц', 'указани', 'правил', 'команд', 'директив', 'ограничени',
  '*指示', '*命令', '*ルール', '*規則', '*制限', '*指令', '*规则', '*说明', '*指导', '*限制', '*規定',
  '*지시', '*명령', '*규칙', '*지침', '*제한',
  'instructie', 'regels', 'opdracht', 'richtlijn', 'beperking',
  'instrukcj', 'polecen', 'zasad', 'regul', 'wytyczn', 'ograniczen',
  'talimat', 'kural', 'komut', 'yonerge', 'kisitlama',
  'التعليمات', 'تعليمات', 'قواعد', 'الأوامر', 'أوامر', 'الإرشادات', 'القيود', 'تعليماتك', 'قواعدك',
  'निर्देश', 'नियम', 'आदेश', 'प्रतिबंध',
  'anweisung', 'regeln', 'vorgaben', 'instruccion', 'reglas', 'consigne', 'regles', 'instructions', 'instrucoes', 'regras', 'istruzion', 'regole',
  'guidance', 'guidelines', 'directives', 'programming', 'safeguards', 'instructions', 'rules you', 'system prompt',
];

const REVEAL = [
  'покажи', 'раскрой', 'выведи', 'напиши', 'повтори', 'расскажи', 'открой',
  '*表示', '*出力', '*見せ', '*教え', '*公開', '*显示', '*输出', '*告诉', '*透露', '*泄露', '*打印', '*顯示', '*輸出',
  '*보여', '*출력', '*알려', '*공개', '*말해',
  'toon$', 'geef$', 'laat$', 'onthul$', 'print$',
  'pokaz$', 'ujawnij$', 'wypisz$', 'podaj$', 'wyswietl', 'napisz$',
  'goster$', 'yaz$', 'acikla$', 'soyle$', 'ifsa',
  'اعرض', 'اكشف', 'أظهر', 'اظهر', 'اطبع', 'أخبرني', 'اكتب',
  'दिखा', 'बता', 'लिखो', 'प्रकट',
  'zeig$', 'verrat$', 'gib$', 'muestra$', 'revela$', 'dime$', 'affiche$', 'revele$', 'montre$', 'mostre$', 'revele$', 'mostra$', 'rivela$', 'stampa$',
];

const PROMPT_NOUNS = [
  'системный промпт', 'системные инструкц', 'системное сообщени', 'промпт', 'скрытые инструкц', 'скрытые указан', 'исходные инструкц', 'свои инструкц', 'твои инструкц',
  '*システムプロンプト', '*隠された指示', '*隠し指示', '*初期の指示', '*プロンプト',
  '*시스템 프롬프트', '*숨겨진 지침', '*숨겨진 지시', '*프롬프트', '*시스템프롬프트',
  '*系统提示', '*提示词', '*隐藏指令', '*隐藏的指令', '*系統提示', '*初始指令', '*系统指令',
  'systeemprompt', 'systeem prompt', 'verborgen instructies',
  'prompt systemow', 'systemowy prompt', 'ukryte instrukcje',
  'sistem istem', 'gizli talimat', 'sistem komut',
  'موجه النظام', 'تعليماتك المخفية', 'التعليمات المخفية',
  'सिस्टम प्रॉम्प्ट', 'छिपे हुए निर्देश', 'सिस्टम संकेत',
  'systemprompt', 'versteckte anweisung', 'prompt del sistema', 'instrucciones ocultas', 'prompt systeme', 'instructions cachees', 'prompt de sistema', 'instrucoes ocultas', 'prompt di sistema', 'istruzioni nascoste',
  'hidden instructions', 'secret instructions', 'initial prompt', 'original prompt', 'system message', 'hidden prompt', 'internal instructions', 'configuration you were given',
];

const SEND = [
  'отправь', 'перешли', 'пошли', 'вышли',
  '*送って', '*送信', '*転送', '*发送', '*发到', '*转发', '*寄给', '*傳送', '*보내', '*전송',
  'stuur$', 'verstuur$', 'wyslij$', 'przeslij$', 'gonder$', 'ilet$', 'أرسل', 'ارسل', 'भेज',
  'schick$', 'sende$', 'envia$', 'envoie$', 'transfere$', 'invia$', 'inoltra$',
];

const CONVERSATION_NOUNS = [
  'истори', 'переписк', 'разговор', 'диалог',
  '*会話', '*履歴', '*聊天记录', '*对话', '*記録', '*대화', '*기록',
  'gesprek', 'chatgeschiedenis', 'rozmow', 'historie', 'historia', 'sohbet', 'gecmis', 'المحادثة', 'سجل', 'बातचीत', 'इतिहास',
  'unterhaltung', 'verlauf', 'conversacion', 'historial', 'conversation', 'historique', 'conversa', 'conversazione', 'cronologia',
  'chat history', 'chat log', 'conversation', 'previous messages', 'message history', 'this chat', 'the chat', 'entire chat', 'whole chat', 'contacts', 'inbox', 'credentials', 'api keys',
];

/** Where exfiltrated text is to go: an address, a link. */
const DESTINATIONS = ['*@', '*http', '*://', 'адрес', 'почт', '*アドレス', '*メール', '*주소', '*이메일', '*邮箱', '*地址', '*郵箱', 'adres', 'adresse', 'عنوان', 'البريد', 'पते', 'पता', 'ईमेल', 'direccion', 'endereco', 'indirizzo', 'correo', 'e-mail'];

const RULES: Rule[] = [
  { kind: 'override$', id: 'override-multilingual', weight: 1.3, verbs: IGNORE, targets: RULE_NOUNS },
  { kind: 'extraction', id: 'reveal-multilingual', weight: 1.2, verbs: REVEAL, targets: PROMPT_NOUNS },
  { kind: 'exfiltration', id: 'exfiltrate-multilingual', weight: 1.2, verbs: SEND, targets: CONVERSATION_NOUNS, also: DESTINATIONS },
];

/**
 * One alternation: word-start stems behind a "not a letter" look-behind, "*"-entries anywhere, "$"-entries as
 * whole words (imperatives such as "ignore" that must not match "ignored" or "ignorance").
 */
function alternation(words: string[]): RegExp {
  const esc = (w: string): string => {
    const whole = w.endsWith('$');
    const body = (whole ? w.slice(0, -1) : w).replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/ /g, '\\s+');
    return whole ? `${body}(?![\\p{L}\\p{M}])` : body;
  };
  const anywhere = words.filter((w) => w.startsWith('*')).map((w) => esc(w.slice(1)));
  const atStart = words.filter((w) => !w.startsWith('*')).map(esc);
  const alts = [...(atStart.length ? [`(?<![\\p{L}\\p{M}])(?:${atStart.join('|')})`] : []), ...(anywhere.length ? [`(?:${anywhere.join('|')})`] : [])];
  return new RegExp(alts.join('|'), 'gu');
}

const COMPILED = RULES.map((r) => ({ rule: r, verbs: alternation(r.verbs), targets: alternation(r.targets), also: r.also && alternation(r.also) }));

/** Stem lengths the word scan checks: a word whose first PREFIX letters (or whole self, if shorter) is a verb stem's. */
export const PREFIX = 5;

/**
 * The ASCII verbs of the lexicon, cut to PREFIX letters (shorter ones whole): the injection detector's word loop
 * looks words up in this set so pure-ASCII text runs the lexicon only when such a verb occurs.
 */
export const ASCII_VERB_PREFIXES: ReadonlySet<string> = new Set(
  RULES.flatMap((r) => r.verbs)
    .filter((v) => /^[a-z]/.test(v))
    .map((v) => v.replace(/\$$/, '').split(' ')[0])
    .filter((v) => /^[a-z-]+$/.test(v))
    .map((v) => v.slice(0, PREFIX)),
);

/** Clause ends: sentence punctuation of the scripts above, and line breaks. */
// CJK full stop, fullwidth ! ? ;, Devanagari danda, Arabic question mark — escaped, so the bundle stays one-byte text.
const CLAUSE_END = /[.!?;\u3002\uff01\uff1f\uff1b\n\u0964\u061f]/;

export interface LexiconHit {
  id: string;
  kind: LexiconKind;
  weight: number;
  start: number;
  end: number;
}

/**
 * Verb and target of one rule in the same clause (on lower-cased normalized text). Cost: one scan per verb
 * alternation; the target search runs only inside the clause of a verb found.
 */
export function lexiconHits(lower: string): LexiconHit[] {
  const hits: LexiconHit[] = [];
  for (const { rule, verbs, targets, also } of COMPILED) {
    verbs.lastIndex = 0;
    let m: RegExpExecArray | null;
    let guard = 0;
    while ((m = verbs.exec(lower)) !== null && guard++ < 64) {
      let from = m.index;
      while (from > 0 && m.index - from < 200 && !CLAUSE_END.test(lower[from - 1])) from--;
      let to = m.index + m[0].length;
      while (to < lower.length && to - m.index < 200 && !CLAUSE_END.test(lower[to])) to++;
      const clause = lower.slice(from, to);
      targets.lastIndex = 0;
      const t = targets.exec(clause);
      if (also) also.lastIndex = 0;
      if (t && (!also || also.test(clause))) {
        const ts = from + t.index;
        hits.push({ id: rule.id, kind: rule.kind, weight: rule.weight, start: Math.min(m.index, ts), end: Math.max(m.index + m[0].length, ts + t[0].length) });
        break;
      }
    }
  }
  return hits;
}
