/**
 * The response and stream families of the bypass evaluation: every case of test/data/bypass/response.jsonl
 * makes the stub upstream answer in a shape that once slipped past the response rules (context words released
 * before a streamed value, a token split around a zero-width character, text outside message.content, token
 * lists, compressed or oversized bodies, the Responses API), sent through the real proxy with the default pack
 * (or a policy with custom rules, or MAX_RESPONSE_SIZE of 2 KB). A case got through when its sensitive value is
 * readable in what the client receives: in any text field as a client assembles it (deltas joined per field),
 * or in a body that is not JSON.
 *
 * `node dist/scripts/eval-bypass-response.js [--json]`; evalResponseBypass() returns the figures per family.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SseParser } from '../proxy/protocols/sse';
import { headerJson, startStubUpstream } from '../test/fixtures/stub-upstream';
import { startGuarded, type GuardedProxy } from '../test/support/guarded-proxy';
import { CUSTOM_RESPONSE_RULES, dataFile } from '../test/support/stream-dialects';

export interface BypassFamily {
  family: string;
  total: number;
  gotThrough: number;
  /** Ids of the cases that got through. */
  cases: string[];
}

interface BypassCase {
  id: string;
  family: string;
  request: { path: string; body: unknown };
  headers: Record<string, string>;
  secret: string;
  /** Which proxy: the default pack (default), with custom rules (custom), or a 2 KB MAX_RESPONSE_SIZE (small). */
  policy?: 'custom';
  proxy?: 'small';
}

/** The default pack plus the custom rules of the stream tests, the codename pattern blocking. */
const CUSTOM_POLICY = `version: 1\nextends: default\nguardrails:\n  rules:${CUSTOM_RESPONSE_RULES}`;

const DEFAULT_DATA = dataFile('bypass/response.jsonl');

type Json = unknown;

/**
 * Every string in a parsed value appended, in order, to the texts a reader could assemble from it: per field
 * (deltas of one choice), and across the positions of a list (a token list, or the k-th alternatives of each
 * position), so a value spread over many strings is found whole.
 */
function collect(value: Json, at: Array<string | number>, into: Map<string, string>): void {
  if (typeof value === 'string') {
    const numbered = at.map((p, i) => (typeof p === 'number' ? i : -1)).filter((i) => i >= 0);
    const last = numbered[numbered.length - 1];
    const keys = new Set([at.join('.'), at.map((p) => (typeof p === 'number' ? '*' : p)).join('.'), at.map((p, i) => (typeof p === 'number' && i !== last ? '*' : p)).join('.')]);
    for (const key of keys) into.set(key, (into.get(key) ?? '') + value);
  } else if (Array.isArray(value)) value.forEach((v, i) => collect(v, [...at, i], into));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) collect(v, [...at, k], into);
}

/** The texts a client reads from a response: per field, deltas joined; bodies or events that are not JSON as they are. */
export function clientTexts(contentType: string, body: string): string[] {
  const fields = new Map<string, string>();
  const raw: string[] = [];
  const add = (data: string): void => {
    try {
      collect(JSON.parse(data) as Json, [], fields);
    } catch {
      raw.push(data);
    }
  };
  if (contentType.startsWith('text/event-stream')) {
    const parser = new SseParser({ event: (ev) => ev.hasData && add(ev.data), comment: () => undefined });
    parser.push(Buffer.from(body));
    parser.end();
  } else add(body);
  return [...fields.values(), ...raw];
}

/** Header values the stub reads as JSON (or a JSON string literal, for x-stub-reply), with non-ASCII escaped. */
function asciiHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (/^[\x20-\x7e]*$/.test(v)) out[k] = v;
    else if (k === 'x-stub-reply') out[k] = headerJson(v);
    else out[k] = headerJson(JSON.parse(v));
  }
  return out;
}

export async function evalResponseBypass(file = DEFAULT_DATA): Promise<BypassFamily[]> {
  const cases = readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as BypassCase);
  const stub = await startStubUpstream({ record: false });
  const dir = mkdtempSync(path.join(tmpdir(), 'bypass-response-'));
  const policyFile = path.join(dir, 'custom.yaml');
  writeFileSync(policyFile, CUSTOM_POLICY);
  const proxies: Record<string, GuardedProxy> = {
    default: await startGuarded(stub.url, {}),
    custom: await startGuarded(stub.url, { POLICY_FILE: policyFile }),
    small: await startGuarded(stub.url, { MAX_RESPONSE_SIZE: '2048' }),
  };
  const families = new Map<string, BypassFamily>();
  try {
    for (const c of cases) {
      const proxy = proxies[c.proxy ?? c.policy ?? 'default'];
      const res = await fetch(`${proxy.proxy.url}${c.request.path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...asciiHeaders(c.headers) },
        body: JSON.stringify(c.request.body),
      });
      const texts = clientTexts(res.headers.get('content-type') ?? '', await res.text());
      const fam = families.get(c.family) ?? { family: c.family, total: 0, gotThrough: 0, cases: [] };
      families.set(c.family, fam);
      fam.total++;
      if (texts.some((t) => t.includes(c.secret))) {
        fam.gotThrough++;
        fam.cases.push(c.id);
      }
    }
  } finally {
    for (const p of Object.values(proxies)) await p.close();
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return [...families.values()];
}

if (require.main === module) {
  evalResponseBypass().then(
    (families) => {
      if (process.argv.includes('--json')) return console.log(JSON.stringify(families, null, 2));
      console.log('family               cases  got through');
      for (const f of families) console.log(`${f.family.padEnd(20)} ${String(f.total).padStart(5)}  ${f.gotThrough}${f.cases.length ? ` (${f.cases.join(', ')})` : ''}`);
    },
    (err: Error) => {
      console.error(err.message);
      process.exit(1);
    },
  );
}
