import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import schema from '../../../proxy/policy/policy.schema.json';
import { PACK_NAMES } from '../../../proxy/policy/types';

/** docs/policy.md documents every field and every allowed value of the schema; the schema is the source. */
describe('docs/policy.md against the policy schema', () => {
  const docs = readFileSync(join(__dirname, '../../../docs/policy.md'), 'utf8');
  const tableFields = new Set([...docs.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]));
  type Obj = { properties?: Record<string, unknown> };
  const defs = schema.$defs as unknown as Record<string, Obj & { enum?: unknown[] }>;

  const objects: Array<[string, Obj]> = [
    ['top level', schema as unknown as Obj],
    ['guardrails', defs.guardrails],
    ['stream', defs.stream],
    ['rule', defs.rule],
    ['rule fields', defs.ruleFields],
    ['match', defs.match],
    ['patterns', defs.regexPattern],
    ['allow', defs.allowEntry],
    ['inbound', defs.inbound],
    ['inbound route', defs.inboundRoute],
  ];

  it.each(objects)('documents every field of %s in a table', (_name, obj) => {
    const missing = Object.keys(obj.properties ?? {}).filter((f) => !tableFields.has(f));
    expect(missing).toEqual([]);
  });

  it('documents no field the schema does not have (outside the env and metrics tables)', () => {
    const known = new Set(objects.flatMap(([, o]) => Object.keys(o.properties ?? {})));
    const extra = [...tableFields].filter((f) => !known.has(f) && !/^[A-Z_]+$/.test(f) && !/_total$|_seconds$|_up$/.test(f) && !PACK_NAMES.includes(f as never));
    expect(extra).toEqual([]);
  });

  it.each(['detector', 'stage', 'action', 'mode', 'onError', 'redaction', 'severity', 'routeKind', 'blockStatus', 'modelUse', 'direction'])('names every value of %s', (def) => {
    const missing = (defs[def].enum ?? []).filter((v) => !docs.includes(`\`${String(v)}\``));
    expect(missing).toEqual([]);
  });

  it('describes every built-in pack', () => {
    for (const p of PACK_NAMES) expect(docs).toContain(`| \`${p}\` |`);
  });
});
