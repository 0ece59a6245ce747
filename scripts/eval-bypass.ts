/**
 * The `bypass` section of `npm run eval` (with the response side of scripts/eval-bypass-response.ts in one table):
 * request-side bypass attempts (test/data/bypass/request*.jsonl) sent
 * through the real proxy (dist/proxy/main.js, default pack) to the differential upstream (FastAPI/uvicorn, see
 * test/fixtures/differential_upstream.py). A case GOT THROUGH when a handler parsed a body that still carries
 * all of its markers (the instruction, the secret, every piece of a split one): the model would have read it.
 * Benign controls count the opposite failure: refused although harmless.
 *
 * A case: {id, family, target, method?, headers?, body | bodyRaw, encode?, markers, expect}. `encode` applies in
 * order: a charset (utf8-bom, utf16le[-bom], utf16be[-bom], utf32le[-bom], utf32be[-bom]) then content codings
 * (gzip, deflate, deflate-raw, br); the case's headers say what was declared.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { startProxyProcess } from '../bench/support';
import { compilePolicy } from '../proxy/guardrails/compile';
import { builtinDetectors } from '../proxy/guardrails/detectors';
import { evaluateStage } from '../proxy/guardrails/engine';
import { RedactionContext } from '../proxy/guardrails/redact';
import { newExchange, type Segment } from '../proxy/protocols/exchange';
import { PACKS } from '../proxy/policy/packs';
import type { BypassFamily } from './eval-bypass-response';
import { differentialPython, startDifferentialUpstream, type DiffRecord } from '../test/fixtures/differential-upstream';
import { sendRaw } from '../test/support/raw-http';

export interface BypassCase {
  id: string;
  family: string;
  target: string;
  method?: string;
  headers?: Record<string, string>;
  body?: unknown;
  bodyRaw?: string;
  encode?: string[];
  markers: string[];
  /** blocked / redacted: an attack (target: never gets through); benign: a control (target: reaches the model). */
  expect: 'blocked' | 'redacted' | 'benign';
}

export interface FamilyResult {
  cases: number;
  attacks: number;
  gotThrough: number;
  benign: number;
  benignRefused: number;
}

export interface BypassReport {
  corpus: string[];
  families: Record<string, FamilyResult>;
  total: FamilyResult;
  /** Ids of attacks that got through and of controls that were refused. */
  gotThrough: string[];
  benignRefused: string[];
}

export function loadCorpus(dir: string): { files: string[]; cases: BypassCase[] } {
  const files = readdirSync(dir)
    .filter((f) => /^request.*\.jsonl$/.test(f))
    .sort();
  const cases = files.flatMap((f) =>
    readFileSync(path.join(dir, f), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as BypassCase),
  );
  return { files, cases };
}

function charset(text: string, name: string): Buffer {
  const bom = name.endsWith('-bom') ? '\ufeff' : '';
  const kind = name.replace(/-bom$/, '');
  if (kind === 'utf8') return Buffer.from(bom + text, 'utf8');
  if (kind.startsWith('utf16')) {
    const le = Buffer.from(bom + text, 'utf16le');
    return kind === 'utf16be' ? le.swap16() : le;
  }
  const cps = [...(bom + text)].map((c) => c.codePointAt(0)!);
  const out = Buffer.alloc(cps.length * 4);
  cps.forEach((cp, i) => (kind === 'utf32be' ? out.writeUInt32BE(cp, i * 4) : out.writeUInt32LE(cp, i * 4)));
  return out;
}

const CODINGS: Record<string, (b: Buffer) => Buffer> = {
  gzip: (b) => zlib.gzipSync(b),
  deflate: (b) => zlib.deflateSync(b),
  'deflate-raw': (b) => zlib.deflateRawSync(b),
  br: (b) => zlib.brotliCompressSync(b),
};

/** The bytes a case sends. */
export function encodeBody(c: BypassCase): Buffer {
  const text = c.bodyRaw ?? JSON.stringify(c.body);
  let bytes: Buffer = Buffer.from(text, 'utf8');
  for (const step of c.encode ?? []) {
    if (CODINGS[step]) bytes = CODINGS[step](bytes);
    else bytes = charset(text, step);
  }
  return bytes;
}

const gotThrough = (c: BypassCase, seen: DiffRecord[]): boolean => seen.some((r) => c.markers.every((m) => r.strings.join('\n').includes(m)));

/** Runs the corpus; undefined (with the reason on stderr) when the differential upstream cannot be installed. */
export async function runBypass(root: string): Promise<BypassReport | undefined> {
  const python = differentialPython();
  if (!python) return undefined;
  const { files, cases } = loadCorpus(path.join(root, 'test', 'data', 'bypass'));
  const diff = await startDifferentialUpstream(python);
  const report: BypassReport = { corpus: files, families: {}, total: { cases: 0, attacks: 0, gotThrough: 0, benign: 0, benignRefused: 0 }, gotThrough: [], benignRefused: [] };
  let proxy: { url: string; stop(): Promise<void> } | undefined;
  try {
    proxy = await startProxyProcess(diff.url, { POLICY_PACK: 'default', TRACE_FILE: '/dev/null', LOG_LEVEL: 'error' });
    for (const c of cases) {
      const id = randomUUID();
      await sendRaw(proxy.url, { method: c.method ?? 'POST', target: c.target, body: encodeBody(c), headers: { 'content-type': 'application/json', ...c.headers, 'x-request-id': id } });
      const seen = (await diff.records()).filter((r) => r.request_id === id);
      const fam = (report.families[c.family] ??= { cases: 0, attacks: 0, gotThrough: 0, benign: 0, benignRefused: 0 });
      for (const r of [fam, report.total]) {
        r.cases++;
        if (c.expect === 'benign') r.benign++;
        else r.attacks++;
      }
      if (c.expect === 'benign' && !gotThrough(c, seen)) {
        fam.benignRefused++;
        report.total.benignRefused++;
        report.benignRefused.push(c.id);
      } else if (c.expect !== 'benign' && gotThrough(c, seen)) {
        fam.gotThrough++;
        report.total.gotThrough++;
        report.gotThrough.push(c.id);
      }
    }
  } finally {
    await proxy?.stop();
    await diff.close();
  }
  return report;
}

/** The cost side of conversation-level scoring: benign conversations that only the joined views block. */
export interface ConversationControls {
  file: string;
  role: string;
  conversations: number;
  /** Blocked because one message alone is blocked (the per-message false positives the detector already has). */
  blockedByAMessage: number;
  /** Blocked although no message alone is: the false blocks joining the conversation adds. */
  blockedOnlyJoined: number;
}

/**
 * Benign rows (label 0) of a labelled file, three per conversation in file order, through the default pack's
 * request stage: how many conversations the joined views block when no single message is blocked.
 */
export function conversationControls(dataDir: string): ConversationControls[] {
  const policy = compilePolicy(PACKS.default, builtinDetectors());
  const blocked = (texts: string[], role: string): boolean => {
    const input: Segment[] = texts.map((text, i) => ({ role, kind: 'message', trusted: role !== 'tool', path: ['messages', i, 'content'], text }));
    const ex = newExchange({ id: 'c', method: 'POST', path: '/v1/chat/completions', api: 'openai.chat', dialect: 'openai', upstream: new URL('http://127.0.0.1:1'), input });
    return evaluateStage(policy, ex, 'request', new RedactionContext(Buffer.from('eval'))).verdict !== undefined;
  };
  const out: ConversationControls[] = [];
  for (const [file, role] of [['injection.jsonl', 'user'], ['indirect-injection.jsonl', 'tool']] as const) {
    const full = path.join(dataDir, file);
    if (!existsSync(full)) continue;
    const benign = readFileSync(full, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as { text: string; label: number })
      .filter((r) => r.label === 0)
      .map((r) => r.text);
    const c: ConversationControls = { file, role, conversations: 0, blockedByAMessage: 0, blockedOnlyJoined: 0 };
    for (let i = 0; i + 3 <= benign.length; i += 3) {
      const conv = benign.slice(i, i + 3);
      c.conversations++;
      if (conv.some((t) => blocked([t], role))) c.blockedByAMessage++;
      else if (blocked(conv, role)) c.blockedOnlyJoined++;
    }
    out.push(c);
  }
  return out;
}

export function formatConversationControls(rows: ConversationControls[]): string {
  if (rows.length === 0) return '';
  return [
    '\n  benign conversations (3 benign rows each, default pack): blocked by one message alone / blocked only by the joined views',
    ...rows.map((r) => `  ${`${r.file} as ${r.role}`.padEnd(40)} ${r.conversations} conversations: ${r.blockedByAMessage} / ${r.blockedOnlyJoined}`),
  ].join('\n');
}

/**
 * One table for both sides: the request families (this file) and the response and stream families
 * (scripts/eval-bypass-response.ts), each side with its own total. Response cases are all attacks.
 */
export function formatBypass(r: BypassReport | undefined, responses: readonly BypassFamily[]): string {
  const row = (side: string, name: string, f: FamilyResult): string =>
    `  ${side.padEnd(9)} ${name.padEnd(18)} ${String(f.cases).padStart(6)} ${String(f.attacks).padStart(8)} ${String(f.gotThrough).padStart(12)} ${String(f.benign).padStart(7)} ${String(f.benignRefused).padStart(15)}`;
  const out = [
    `\nbypass  (real proxy, default pack; request: ${r ? r.corpus.join(', ') : 'request*.jsonl'} to the differential FastAPI/uvicorn upstream; response: response.jsonl from the stub upstream)`,
    `  ${'side'.padEnd(9)} ${'family'.padEnd(18)} ${'cases'.padStart(6)} ${'attacks'.padStart(8)} ${'got through'.padStart(12)} ${'benign'.padStart(7)} ${'benign refused'.padStart(15)}`,
  ];
  if (r) out.push(...Object.entries(r.families).map(([k, f]) => row('request', k, f)), row('request', 'ALL', r.total));
  else out.push('  request   SKIPPED (the differential upstream is unavailable; see the message above)');
  const response = (f: BypassFamily): FamilyResult => ({ cases: f.total, attacks: f.total, gotThrough: f.gotThrough, benign: 0, benignRefused: 0 });
  const total: FamilyResult = { cases: 0, attacks: 0, gotThrough: 0, benign: 0, benignRefused: 0 };
  for (const f of responses) {
    out.push(row('response', f.family, response(f)));
    total.cases += f.total;
    total.attacks += f.total;
    total.gotThrough += f.gotThrough;
  }
  out.push(row('response', 'ALL', total));
  const through = [...(r?.gotThrough ?? []), ...responses.flatMap((f) => f.cases)];
  if (through.length > 0) out.push(`  got through: ${through.join(', ')}`);
  if (r && r.benignRefused.length > 0) out.push(`  benign refused: ${r.benignRefused.join(', ')}`);
  return out.join('\n');
}
