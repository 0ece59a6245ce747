import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compilePolicy } from '../../../proxy/guardrails/compile';
import { builtinDetectors } from '../../../proxy/guardrails/detectors';
import { loadPolicyText, NO_RULES, PolicyError, schemaProblems } from '../../../proxy/policy/load';
import { PACKS } from '../../../proxy/policy/packs';
import { checkInboundPolicy } from '../../../proxy/policy/inbound';

function problemsOf(yaml: string): string[] {
  try {
    loadPolicyText(yaml, 'test.yaml');
    return [];
  } catch (err) {
    if (err instanceof PolicyError) return [...err.problems];
    throw err;
  }
}

describe('policy schema', () => {
  it.each([
    ['guardrails turned off explicitly', 'version: 1\nextends: off\n'],
    ['a pack and nothing else', 'version: 1\nextends: strict\n'],
    [
      'every rule field',
      `version: 1
name: full
guardrails:
  mode: enforce
  stream: { max_holdback_chars: 4096 }
  rules:
    - id: pii-mask
      description: mask cards in responses
      detector: pii
      entities: [CREDIT_CARD, EMAIL]
      stage: response
      action: redact
      redaction: mask
      threshold: 0.6
      min_count: 2
      mode: monitor
      on_error: block
      severity: critical
      block_status: 403
      message: no cards
      match:
        routes: [openai.chat, tgi.generate_stream]
        paths: ["/v1/*"]
        methods: [POST]
        models: ["meta-llama/*"]
        headers: { x-agent: "billing-*" }
        roles: [user, tool]
    - id: internal-hosts
      detector: regex
      action: block
      patterns: [{ id: INTERNAL_HOST, pattern: "\\\\bcorp\\\\.internal\\\\b", case_insensitive: true }]
    - id: banned-topics
      detector: keywords
      action: flag
      keywords: [merger, layoffs]
    - id: huge-prompts
      detector: size
      stage: request
      action: block
      max_chars: 200000
      max_tokens: 50000
`,
    ],
    ['JSON text', '{"version": 1, "guardrails": {"rules": [{"id": "a", "detector": "secrets", "action": "block"}]}}'],
  ])('accepts %s', (_name, text) => {
    expect(problemsOf(text)).toEqual([]);
  });

  it.each([
    ['an unknown top-level key', 'version: 1\nrulez: []\n', '/: unknown field "rulez"'],
    ['a wrong version', 'version: 2\n', '/version: must be equal to constant'],
    ['an unknown pack', 'extends: paranoid\n', '/extends: must be one of "default", "monitor", "strict", "off"'],
    ['a bad action', 'guardrails:\n  rules:\n    - {id: a, detector: pii, action: drop}\n', '/guardrails/rules/0/action: must be one of "block", "redact", "flag"'],
    ['a missing detector', 'guardrails:\n  rules:\n    - {id: a, action: block}\n', '/guardrails/rules/0: missing one of the fields detector, category'],
    ['an unknown rule field', 'guardrails:\n  rules:\n    - {id: a, detector: pii, action: flag, colour: red}\n', '/guardrails/rules/0: unknown field "colour"'],
    ['a threshold above 1', 'guardrails:\n  rules:\n    - {id: a, detector: pii, action: flag, threshold: 1.5}\n', '/guardrails/rules/0/threshold: must be <= 1'],
    ['a regex rule without patterns', 'guardrails:\n  rules:\n    - {id: a, detector: regex, action: flag}\n', '/guardrails/rules/0: missing required field "patterns"'],
    ['keywords on a pii rule', 'guardrails:\n  rules:\n    - {id: a, detector: pii, action: flag, keywords: [x]}\n', "/guardrails/rules/0/keywords: field not allowed for this rule's detector"],
    ['a size rule without a limit', 'guardrails:\n  rules:\n    - {id: a, detector: size, action: block}\n', '/guardrails/rules/0: missing one of the fields max_chars, max_tokens'],
    ['a bad rule id', 'guardrails:\n  rules:\n    - {id: "has space", detector: pii, action: flag}\n', '/guardrails/rules/0/id: must match pattern'],
    ['a duplicate rule id', 'guardrails:\n  rules:\n    - {id: a, detector: pii, action: flag}\n    - {id: a, detector: secrets, action: flag}\n', '/guardrails/rules/1/id: duplicate rule id "a"'],
    ['a bad route kind', 'guardrails:\n  rules:\n    - {id: a, detector: pii, action: flag, match: {routes: [openai.chatt]}}\n', '/guardrails/rules/0/match/routes/0: must be one of'],
    ['block_status 503', 'guardrails:\n  rules:\n    - {id: a, detector: pii, action: block, block_status: 503}\n', '/guardrails/rules/0/block_status: must be one of 400, 403'],
    ['a bad limits section (limits fragment)', 'limits: 3\n', '/limits: must be array'],
    ['a YAML syntax error', 'guardrails: [\n', 'syntax:'],
    ['duplicate YAML keys', 'version: 1\nversion: 1\n', 'syntax:'],
  ])('rejects %s, naming the path and problem', (_name, text, expected) => {
    const problems = problemsOf(text);
    expect(problems.some((p) => p.startsWith(expected))).toBe(true);
  });

  it.each([
    ['an empty file', ''],
    ['only whitespace', '  \n\n'],
    ['only a comment', '# policy follows\n'],
    ['only the version', 'version: 1\n'],
    ['an empty JSON object', '{}'],
    ['null', 'null\n'],
    ['an empty guardrails section', 'version: 1\nguardrails: {}\n'],
    ['an empty rule list', 'version: 1\nguardrails:\n  rules: []\n'],
    ['only monitor mode', 'version: 1\nguardrails:\n  mode: monitor\n'],
    ['only limits', 'version: 1\nlimits: []\n'],
    ['every inherited rule removed', 'version: 1\nextends: default\nguardrails:\n  remove: [prompt-injection, jailbreak, indirect-injection, pii-redact, secrets-request-redact, secrets-response-block, toxicity, harmful-intent]\n'],
  ])('refuses %s: turning the guardrails off must be explicit', (_name, text) => {
    expect(problemsOf(text)).toEqual([NO_RULES]);
  });

  it('reports every problem at once', () => {
    const problems = problemsOf('guardrails:\n  rules:\n    - {id: a, detector: pii, action: x}\n    - {id: b, detector: nope, action: flag}\n');
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\/guardrails\/rules\/0\/action:/),
        expect.stringMatching(/^\/guardrails\/rules\/1\/detector:/),
      ]),
    );
  });

  it('accepts every built-in pack and every example policy', () => {
    for (const [name, pack] of Object.entries(PACKS)) {
      const { name: _n, ...doc } = pack;
      expect([name, schemaProblems(doc)]).toEqual([name, []]);
    }
    const dir = join(__dirname, '../../../examples/policies');
    const files = readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f));
    expect(files.length).toBeGreaterThan(1);
    for (const f of files) expect([f, problemsOf(readFileSync(join(dir, f), 'utf8'))]).toEqual([f, []]);
  });
});

describe('guardrails.on_unparsable', () => {
  const compiled = (yaml: string) => compilePolicy(loadPolicyText(yaml, 't.yaml'), builtinDetectors());

  test('defaults: block where requests are inspected, allow in monitor mode and without request rules', () => {
    const of = (name: keyof typeof PACKS) => compilePolicy(PACKS[name], builtinDetectors()).onUnparsable;
    expect([of('default'), of('strict'), of('monitor'), of('off')]).toEqual(['block', 'block', 'allow', 'allow']);
    expect(compiled('version: 1\nextends: default\nguardrails:\n  mode: monitor\n').onUnparsable).toBe('allow');
  });

  test('an explicit value wins and is validated', () => {
    expect(compiled('version: 1\nextends: strict\nguardrails:\n  on_unparsable: allow\n').onUnparsable).toBe('allow');
    expect(compiled('version: 1\nextends: monitor\nguardrails:\n  on_unparsable: block\n').onUnparsable).toBe('block');
    expect(() => compiled('version: 1\nguardrails:\n  on_unparsable: maybe\n')).toThrow(/on_unparsable: must be one of "allow", "block"/);
  });
});

describe('policy inbound section', () => {
  const inboundProblems = (yaml: string): string[] => {
    try {
      loadPolicyText(yaml, 'test.yaml', [checkInboundPolicy]);
      return [];
    } catch (err) {
      if (err instanceof PolicyError) return [...err.problems];
      throw err;
    }
  };

  it('accepts routes, fields, identity and direction conditions', () => {
    expect(
      inboundProblems(`version: 1
extends: default
guardrails:
  rules:
    - {id: inbound-only, detector: keywords, keywords: [refund], action: flag, match: {directions: [inbound], routes: [inbound]}}
inbound:
  identity: {sources: [{from: header, name: x-end-user-id}, {from: jwt, claim: sub}]}
  routes:
    - {path: /api/chat, methods: [POST], request: ["$.message", "$.history[*].content"], response: ["$..text", "$['answer']"]}
    - {path: /api/*}
`),
    ).toEqual([]);
  });

  it.each([
    ['a route without a path', 'inbound: {routes: [{methods: [POST]}]}', '/inbound/routes/0: missing required field "path"'],
    ['an empty route list', 'inbound: {routes: []}', '/inbound/routes: must NOT have fewer than 1 items'],
    ['an unknown field', 'inbound: {route: []}', '/inbound: unknown field "route"'],
    ['a path not starting at $', 'inbound: {routes: [{path: /x, request: [message]}]}', '/inbound/routes/0/request/0: must match pattern "^\\$"'],
    ['a JSONPath the selector cannot read', 'inbound: {routes: [{path: /x, response: ["$.a[?(@.b)]"]}]}', '/inbound/routes/0/response/0: "$.a[?(@.b)]": expected [*], [index] or [\'name\'] at character 4'],
    ['an unknown direction', 'guardrails: {rules: [{id: r, detector: pii, action: flag, match: {directions: [outbound]}}]}', '/guardrails/rules/0/match/directions/0: must be one of "egress", "inbound"'],
  ])('refuses %s, naming where', (_what, section, problem) => {
    expect(inboundProblems(`version: 1\nextends: default\n${section}\n`)).toContain(problem);
  });
});
