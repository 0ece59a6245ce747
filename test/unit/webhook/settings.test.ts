import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../../common/env';
import { defaultSettings, loadSettings, renderSettingsTable, WEBHOOK_VERSION } from '../../../webhook/settings';

describe('webhook settings', () => {
  it('has sensible defaults with nothing set', () => {
    const s = defaultSettings();
    expect(s.sidecar.image).toBe(`akto-agent-proxy:${WEBHOOK_VERSION}`);
    expect(s.sidecar.proxyPort).toBe(8080);
    expect(s.sidecar.adminPort).toBe(9090);
    expect(s.akto.secretName).toBe('akto-agent-proxy');
    expect(s.urlEnvVars).toEqual(['AI_AGENT_INFERENCE_URL', 'OPENAI_BASE_URL', 'HF_INFERENCE_ENDPOINT']);
    expect(s.nativeSidecar).toBe('auto');
    expect(s.server.port).toBe(8443);
    expect(s.excludedNamespaces).toEqual(['kube-system', 'kube-public', 'kube-node-lease', 'akto-agent-proxy']);
  });

  it('reads a YAML file and lets env win', () => {
    const file = [
      'sidecar:',
      '  image: registry.example/akto-agent-proxy@sha256:abc',
      '  resources:',
      '    limits:',
      '      memory: 1Gi',
      '  runAsUser: null',
      'urlEnvVars: [MY_URL]',
      'nativeSidecar: never',
    ].join('\n');
    const s = loadSettings({ WEBHOOK_SETTINGS_FILE: '/x/settings.yaml', WEBHOOK_PORT: '9443', POD_NAMESPACE: 'guard' }, () => file);
    expect(s.sidecar.image).toBe('registry.example/akto-agent-proxy@sha256:abc');
    expect(s.sidecar.resources.limits.memory).toBe('1Gi');
    expect(s.sidecar.resources.requests.cpu).toBe('50m');
    expect(s.sidecar.runAsUser).toBeNull();
    expect(s.urlEnvVars).toEqual(['MY_URL']);
    expect(s.nativeSidecar).toBe('never');
    expect(s.server.port).toBe(9443);
    expect(s.certs.serviceNamespace).toBe('guard');
    expect(s.excludedNamespaces).toContain('guard');
  });

  it('enforcement, custody, events and the optional sidecar tiers have safe defaults and read from file and env', () => {
    const d = defaultSettings();
    expect(d.enforcement).toEqual({ exemptServiceAccounts: [], exemptPodSelector: '', exemptionContact: 'the administrators of the akto-agent-proxy Helm release', refusedPolicyPacks: ['off', 'monitor'], requireCustody: false });
    expect(d.custody).toEqual({ enabled: true, envVars: ['HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'HF_API_TOKEN', 'HF_AUTHORIZATION', 'OPENAI_API_KEY'], placeholder: 'held-by-akto-proxy' });
    expect(d.events).toEqual({ enabled: true, maxPerSecond: 5 });
    expect(d.akto.guardrails).toBe('off');
    expect(d.classifier.url).toBe('');
    const file = 'enforcement: {requireCustody: true, exemptPodSelector: "tier in (batch)"}\ncustody: {enabled: false}\nevents: {enabled: false}';
    const s = loadSettings({ WEBHOOK_SETTINGS_FILE: '/s.yaml', ENFORCEMENT_EXEMPT_SERVICE_ACCOUNTS: 'agents/batch, ops/runner', SIDECAR_AKTO_GUARDRAILS: 'request' }, () => file);
    expect(s.enforcement).toMatchObject({ requireCustody: true, exemptPodSelector: 'tier in (batch)', exemptServiceAccounts: ['agents/batch', 'ops/runner'] });
    expect(s.custody.enabled).toBe(false);
    expect(s.events.enabled).toBe(false);
    expect(s.akto.guardrails).toBe('request');
  });

  it('reads JSON too, and env lists are comma-separated', () => {
    const s = loadSettings({ WEBHOOK_SETTINGS_FILE: '/s.json', EXCLUDED_NAMESPACES: 'a, b' }, () => '{"annotationErrors":"warn"}');
    expect(s.annotationErrors).toBe('warn');
    expect(s.excludedNamespaces).toEqual(['a', 'b', 'akto-agent-proxy']);
  });

  const bad: Array<[string, Record<string, string>, string | undefined, RegExp]> = [
    ['port out of range', { WEBHOOK_PORT: '70000' }, undefined, /server\.port \(env WEBHOOK_PORT\).*between/],
    ['bad enum', { NATIVE_SIDECAR: 'maybe' }, undefined, /nativeSidecar \(env NATIVE_SIDECAR\).*auto, always, never/],
    ['bad quantity in file', {}, 'sidecar: {resources: {limits: {memory: "1Gi\\n- name: evil"}}}', /sidecar\.resources\.limits\.memory/],
    ['unknown key', {}, 'sidecar: {imagePullPolicyy: Always}', /unknown key\(s\): sidecar\.imagePullPolicyy/],
    ['not a mapping', {}, '- a', /must hold a mapping/],
    ['same ports', { SIDECAR_ADMIN_PORT: '8080' }, undefined, /SIDECAR_ADMIN_PORT.*must differ/],
    ['bad env var name', { URL_ENV_VARS: 'A=B' }, undefined, /urlEnvVars.*item 0/],
    ['relative TLS path', { TLS_CERT_FILE: 'tls.crt' }, undefined, /tls\.certFile \(env TLS_CERT_FILE\): must be an absolute path, got "tls\.crt"/],
    ['service account without namespace', { ENFORCEMENT_EXEMPT_SERVICE_ACCOUNTS: 'batch-runner' }, undefined, /enforcement\.exemptServiceAccounts \(env ENFORCEMENT_EXEMPT_SERVICE_ACCOUNTS\): item 0/],
    ['bad exemption selector', {}, 'enforcement: {exemptPodSelector: "team=platform,,x"}', /enforcement\.exemptPodSelector \(env ENFORCEMENT_EXEMPT_POD_SELECTOR\): label selector .* empty term/],
    ['not a bool', { CUSTODY_ENABLED: 'yes' }, undefined, /custody\.enabled \(env CUSTODY_ENABLED\): must be true or false/],
    ['a variable both URL and credential', { CUSTODY_ENV_VARS: 'HF_TOKEN,OPENAI_BASE_URL' }, undefined, /custody\.envVars .*OPENAI_BASE_URL is also in urlEnvVars/],
    ['classifier URL with credentials', { SIDECAR_CLASSIFIER_URL: 'http://u:p@classifier:8090' }, undefined, /classifier\.url .*without credentials/],
    ['off spelled as YAML 1.1 false', {}, 'akto: {guardrails: false}', /akto\.guardrails .*must be one of off, request, both/],
  ];
  it.each(bad)('rejects %s with a ConfigError naming the key', (_name, env, file, message) => {
    const load = () => loadSettings(file === undefined ? env : { ...env, WEBHOOK_SETTINGS_FILE: '/f.yaml' }, () => file ?? '');
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(message);
  });

  it('names the file env var when the file cannot be read', () => {
    expect(() => loadSettings({ WEBHOOK_SETTINGS_FILE: '/nope/settings.yaml' })).toThrow(/WEBHOOK_SETTINGS_FILE: cannot read \/nope\/settings.yaml: ENOENT/);
  });

  it('docs/webhook.md carries the generated settings table (UPDATE_GOLDEN=1 rewrites it)', () => {
    const path = join(__dirname, '../../../docs/webhook.md');
    const begin = '<!-- settings-table:begin (generated from webhook/settings.ts; a test checks it) -->\n';
    const end = '\n<!-- settings-table:end -->';
    const doc = readFileSync(path, 'utf8');
    if (process.env.UPDATE_GOLDEN === '1') {
      const [head, rest] = doc.split(begin);
      writeFileSync(path, head + begin + renderSettingsTable() + end + rest.slice(rest.indexOf(end) + end.length));
    }
    expect(readFileSync(path, 'utf8')).toContain(begin + renderSettingsTable() + end);
  });
});
