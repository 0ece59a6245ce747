/**
 * `node dist/bench/guardrails.js [--json] [--n N]`: what the guardrails cost on the hot path, on one core:
 * onRequest of the default pack on a 4 KB chat request (system + user + assistant + user), clean and with PII,
 * every request's text new (numbered); and an agent's turn, where the conversation so far is sent again with one
 * new message (seven segments: what the joined views of a conversation add). What stream holdback adds is measured by `npm run bench:stream`.
 */
import { Writable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { openGuardrails } from '../test/support/guardrails';
import type { Exchange, Segment } from '../proxy/protocols/exchange';
import { chatExchange } from '../test/support/exchange';
import { createLogger } from '../common/logger';
import { createRegistry } from '../common/metrics';

const WORDS = (
  'the report shows steady growth across all three regions while costs stayed flat and margins improved ' +
  'because the team shipped the new pricing model in march and customers renewed at a higher rate than ' +
  'expected please summarise the main risks for the next quarter and suggest two actions for the board'
).split(' ');

function prose(chars: number, seed = 11): string {
  let x = seed;
  let out = '';
  while (out.length < chars) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    out += WORDS[x % WORDS.length] + (x % 13 === 0 ? '. ' : ' ');
  }
  return out.slice(0, chars);
}

function seg(role: string, text: string, i: number): Segment {
  return { role, kind: 'message', trusted: true, path: ['messages', i, 'content'], text };
}

/** Request `n`: every text starts with its number, as no two real requests are the same text. */
function benchExchange(withPii: boolean, n: number): Exchange {
  const user = prose(2600) + (withPii ? ' Reach me at jane.doe@example.com or on +1 415 555 0199, card 4111 1111 1111 1111.' : '');
  const texts = [prose(600, 3), prose(400, 5), prose(400, 7), user].map((t) => `Request ${n}. ${t}`);
  return chatExchange({
    id: 'bench',
    model: 'tgi',
    input: [seg('system', texts[0], 0), seg('user', texts[1], 1), seg('assistant', texts[2], 2), seg('user', texts[3], 3)],
  });
}

/** Turn `n` of an agent's conversation: the same system prompt, the last six messages again, and one new user message. */
function agentTurn(n: number): Exchange {
  const message = (k: number): string => `Message ${k}. ${prose(500, 100 + k)}`;
  const history = Array.from({ length: 6 }, (_, j) => n - 6 + j).filter((k) => k >= 0);
  const input = [seg('system', prose(800, 3), 0), ...history.map((k, j) => seg(k % 2 === 0 ? 'user' : 'assistant', message(k), j + 1))];
  input.push(seg('user', message(n), input.length));
  return chatExchange({ id: 'bench', model: 'tgi', input });
}

function percentiles(samples: number[]): { p50: number; p95: number; p99: number; mean: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

const round = (x: number, d = 4) => Number(x.toFixed(d));

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const nArg = process.argv.indexOf('--n');
  const n = nArg > 0 ? Number(process.argv[nArg + 1]) : 3000;
  const logger = createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));
  const g = await openGuardrails({ POLICY_PACK: 'default' }, logger, createRegistry(false));
  const results: Record<string, unknown> = {};

  const scenarios: Array<[string, (i: number) => Exchange]> = [
    ['request_4kb_clean_ms', (i) => benchExchange(false, i)],
    ['request_4kb_with_pii_ms', (i) => benchExchange(true, i)],
    ['agent_turn_4kb_ms', agentTurn],
  ];
  for (const [name, make] of scenarios) {
    const requestBytes = make(50).input.reduce((a, s) => a + s.text.length, 0);
    const times: number[] = [];
    for (let i = 0; i < n + 500; i++) {
      const ex = make(i + 1);
      const t = performance.now();
      await g.hooks.onRequest!(ex);
      if (i >= 500) times.push(performance.now() - t);
    }
    const p = percentiles(times);
    results[name] = { bytes: requestBytes, p50: round(p.p50), p95: round(p.p95), p99: round(p.p99) };
  }

  g.close();
  if (json) {
    console.log(JSON.stringify(results, null, 2));
    return;
  }
  for (const [k, v] of Object.entries(results)) console.log(`${k.padEnd(28)} ${JSON.stringify(v)}`);
}

void main();
