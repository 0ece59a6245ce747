/**
 * Provider token formats for the secrets detector: documented prefixes, lengths and alphabets. Every rule is one
 * alternative of a single pattern compiled once, so a token is matched against all of them in one pass.
 */

export interface ProviderRule {
  entity: string;
  provider: string;
  /** JS regex source, no capture groups; starts with a fixed literal prefix unless `loose`. */
  re: string;
  score?: number;
  /** No distinctive literal prefix: the value must also look random (see looksRandom). */
  loose?: boolean;
}

export const B = '(?<![A-Za-z0-9_])'; // token start
const E = '(?![A-Za-z0-9_])'; // token end
/** Start of a token whose prefix is a short word: not when it continues a file name or host (`video.ico-…`). */
export const BS = '(?<![A-Za-z0-9_.])';

export const PROVIDER_RULES: ProviderRule[] = [
  { entity: 'AWS_ACCESS_KEY', provider: 'aws', re: `${B}(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z2-7]{16}${E}` },
  { entity: 'HF_TOKEN', provider: 'huggingface', re: `${B}hf_[A-Za-z0-9]{30,40}${E}` },
  { entity: 'HF_TOKEN', provider: 'huggingface-org', re: `${B}api_org_[A-Za-z0-9]{30,40}${E}` },
  { entity: 'ANTHROPIC_KEY', provider: 'anthropic', re: `${B}sk-ant-(?:api|admin|sid)\\d{2}-[A-Za-z0-9_-]{80,120}${E}` },
  { entity: 'OPENAI_KEY', provider: 'openai', re: `${B}sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,200}T3BlbkFJ[A-Za-z0-9_-]{20,200}${E}` },
  { entity: 'OPENAI_KEY', provider: 'openai', re: `${B}sk-(?:proj-|svcacct-|admin-)[A-Za-z0-9_-]{40,200}${E}`, score: 0.85 },
  { entity: 'OPENAI_KEY', provider: 'openai-compatible', re: `${B}sk-[A-Za-z0-9]{32,64}${E}`, score: 0.75, loose: true },
  { entity: 'GITHUB_TOKEN', provider: 'github', re: `${B}(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}${E}` },
  { entity: 'GITHUB_TOKEN', provider: 'github', re: `${B}github_pat_[A-Za-z0-9_]{60,255}${E}` },
  {
    entity: 'GITLAB_TOKEN',
    provider: 'gitlab',
    // Token prefix plus at least the documented 20 characters; instance-specific and routable variants are longer.
    re: `${B}(?:gl(?:pat|rt|dt|soat|ffct|ft)-[A-Za-z0-9_-]{20,50}|glpat-[A-Za-z0-9_-]{27,300}\\.[0-9a-z]{2}\\.[0-9a-z]{7,9}|glptt-[A-Za-z0-9_-]{40}|glimt-[A-Za-z0-9_-]{25}|glagent-[A-Za-z0-9_-]{50,100}|gloas-[A-Za-z0-9_-]{64}|glcbt-(?:[0-9a-fA-F]{1,5}_)?[A-Za-z0-9_-]{20}|GR1348941[A-Za-z0-9_-]{20,50})${E}`,
  },
  { entity: 'SLACK_TOKEN', provider: 'slack', re: `${B}xox(?:[abposre]|e\\.xox[bp])-\\d{1,15}-[A-Za-z0-9-]{8,250}${E}` },
  { entity: 'SLACK_TOKEN', provider: 'slack-app', re: `${B}xapp-\\d-[A-Z0-9]{9,12}-\\d{10,14}-[a-f0-9]{60,70}${E}` },
  { entity: 'SLACK_WEBHOOK', provider: 'slack', re: `https?://hooks\\.slack\\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_+-]{20,120}` },
  { entity: 'TEAMS_WEBHOOK', provider: 'microsoft-teams', re: `https://[a-z0-9-]+\\.(?:webhook\\.)?office(?:365)?\\.com/webhook(?:b2)?/[A-Za-z0-9@/_-]{40,300}` },
  { entity: 'STRIPE_KEY', provider: 'stripe', re: `${B}(?:sk|rk)_live_[A-Za-z0-9]{16,255}${E}` },
  { entity: 'STRIPE_KEY', provider: 'stripe-test', re: `${B}(?:sk|rk)_test_[A-Za-z0-9]{16,255}${E}`, score: 0.7 },
  { entity: 'GOOGLE_API_KEY', provider: 'google', re: `${B}AIza[0-9A-Za-z_-]{35}${E}` },
  { entity: 'GOOGLE_OAUTH', provider: 'google', re: `${B}(?:GOCSPX-[A-Za-z0-9_-]{28}|ya29\\.[A-Za-z0-9_-]{30,300})${E}` },
  { entity: 'NPM_TOKEN', provider: 'npm', re: `${B}npm_[A-Za-z0-9]{36}${E}` },
  { entity: 'PYPI_TOKEN', provider: 'pypi', re: `${B}pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,300}${E}` },
  { entity: 'API_TOKEN', provider: 'sendgrid', re: `${B}SG\\.[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{43}${E}` },
  { entity: 'API_TOKEN', provider: 'digitalocean', re: `${B}do[opr]_v1_[a-f0-9]{64}${E}` },
  { entity: 'API_TOKEN', provider: 'shopify', re: `${B}shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}${E}` },
  { entity: 'API_TOKEN', provider: 'hashicorp-vault', re: `${B}hv[sbr]\\.[A-Za-z0-9_-]{24,200}${E}` },
  { entity: 'API_TOKEN', provider: 'terraform-cloud', re: `${B}[A-Za-z0-9]{14}\\.atlasv1\\.[A-Za-z0-9_=-]{60,100}${E}` },
  { entity: 'API_TOKEN', provider: 'doppler', re: `${B}dp\\.(?:pt|st|sa|ct|scim|audit)\\.[A-Za-z0-9]{20,60}${E}` },
  { entity: 'API_TOKEN', provider: 'square', re: `${B}(?:sq0atp-[A-Za-z0-9_-]{22}|sq0csp-[A-Za-z0-9_-]{43}|EAAA[A-Za-z0-9_-]{60})${E}` },
  { entity: 'API_TOKEN', provider: 'atlassian', re: `${B}AT(?:ATT|CTT)3xFfGF0[A-Za-z0-9_=-]{100,300}${E}` },
  { entity: 'API_TOKEN', provider: 'artifactory', re: `${B}AKC[p][A-Za-z0-9]{69,80}${E}` },
  { entity: 'API_TOKEN', provider: 'databricks', re: `${B}dapi[a-f0-9]{32}(?:-\\d)?${E}` },
  { entity: 'API_TOKEN', provider: 'notion', re: `${B}(?:ntn_[A-Za-z0-9]{40,50}|secret_[A-Za-z0-9]{43})${E}` },
  { entity: 'API_TOKEN', provider: 'grafana', re: `${B}(?:glsa_[A-Za-z0-9]{32}_[a-fA-F0-9]{8}|glc_[A-Za-z0-9+/]{32,400}={0,2})${E}` },
  { entity: 'API_TOKEN', provider: 'sentry', re: `${B}sntry[su]_[A-Za-z0-9+/=_-]{40,300}${E}` },
  { entity: 'API_TOKEN', provider: 'linear', re: `${B}lin_api_[A-Za-z0-9]{40}${E}` },
  { entity: 'API_TOKEN', provider: 'groq', re: `${B}gsk_[A-Za-z0-9]{48,56}${E}` },
  { entity: 'API_TOKEN', provider: 'perplexity', re: `${B}pplx-[A-Za-z0-9]{48,56}${E}` },
  { entity: 'API_TOKEN', provider: 'tavily', re: `${B}tvly-(?:dev-|prod-)?[A-Za-z0-9]{32}${E}` },
  { entity: 'API_TOKEN', provider: 'replicate', re: `${B}r8_[A-Za-z0-9]{37}${E}` },
  { entity: 'API_TOKEN', provider: 'jina', re: `${B}jina_[a-f0-9]{32}[A-Za-z0-9_-]{20,40}${E}` },
  { entity: 'API_TOKEN', provider: 'figma', re: `${B}fig[dpu]_[A-Za-z0-9_-]{38,45}${E}` },
  { entity: 'API_TOKEN', provider: 'firecrawl', re: `${BS}fc-[a-f0-9]{32}${E}` },
  { entity: 'API_TOKEN', provider: 'dockerhub', re: `${B}dckr_pat_[A-Za-z0-9_-]{27}${E}` },
  { entity: 'API_TOKEN', provider: 'rubygems', re: `${B}rubygems_[a-f0-9]{48}${E}` },
  { entity: 'API_TOKEN', provider: 'nuget', re: `${B}oy2[a-z0-9]{43}${E}` },
  { entity: 'API_TOKEN', provider: 'postman', re: `${B}PMAK-[a-f0-9]{24}-[a-f0-9]{34}${E}` },
  { entity: 'API_TOKEN', provider: 'mailgun', re: `${BS}key-[a-z0-9]{32}${E}` },
  { entity: 'API_TOKEN', provider: 'mailchimp', re: `${B}[a-f0-9]{32}-us\\d{1,2}${E}` },
  { entity: 'API_TOKEN', provider: 'twilio', re: `${B}(?:SK|AC)[a-f0-9]{32}${E}` },
  { entity: 'API_TOKEN', provider: 'facebook', re: `${B}EAA[A-Za-z0-9]{90,400}${E}` },
  { entity: 'API_TOKEN', provider: 'sourcegraph', re: `${B}sgp_(?:[a-fA-F0-9]{16}|local)_[a-fA-F0-9]{40}${E}` },
  { entity: 'API_TOKEN', provider: 'fly.io', re: `${B}(?:FlyV1 )?fm[12][ar]?_[A-Za-z0-9+/=_-]{100,}` },
  { entity: 'API_TOKEN', provider: 'pulumi', re: `${B}pul-[a-f0-9]{40}${E}` },
  { entity: 'API_TOKEN', provider: 'heroku', re: `${B}HRKU-AA[A-Za-z0-9_-]{58}${E}` },
  { entity: 'API_TOKEN', provider: 'telegram', re: `${B}\\d{8,10}:AA[A-Za-z0-9_-]{33}${E}` },
  { entity: 'API_TOKEN', provider: 'discord', re: `${B}[MNO][A-Za-z0-9_-]{23,25}\\.[A-Za-z0-9_-]{6}\\.[A-Za-z0-9_-]{27,38}${E}`, score: 0.7, loose: true },
  { entity: 'API_TOKEN', provider: 'twitch', re: `${B}live_\\d{6,12}_[A-Za-z0-9]{30}${E}` },
  { entity: 'API_TOKEN', provider: 'dependency-track', re: `${B}odt_[A-Za-z0-9]{32}${E}` },
  { entity: 'API_TOKEN', provider: 'adafruit', re: `${B}aio_[A-Za-z0-9]{28}${E}` },
  { entity: 'API_TOKEN', provider: 'crates.io', re: `${B}cio[A-Za-z0-9]{32}${E}` },
  { entity: 'API_TOKEN', provider: 'newrelic', re: `${B}(?:NRAK-[A-Z0-9]{27}|NRII-[A-Za-z0-9_-]{32}|NRIQ-[A-Za-z0-9_-]{32}|(?:eu01xx[a-f0-9]{30}|[a-f0-9]{36})NRAL|NRJS-[a-f0-9]{19})${E}` },
  { entity: 'API_TOKEN', provider: 'cloudflare-origin-ca', re: `${B}v1\\.0-[a-f0-9]{24}-[a-f0-9]{146}${E}` },
  { entity: 'API_TOKEN', provider: 'hashicorp-vault-legacy', re: `${B}[sb]\\.[A-Za-z0-9]{24}${E}`, score: 0.6, loose: true },
  { entity: 'API_TOKEN', provider: 'salesforce', re: `${B}00D[A-Za-z0-9]{12,15}![A-Za-z0-9._]{80,120}${E}` },
  { entity: 'API_TOKEN', provider: 'mapbox', re: `${B}[pst]k\\.eyJ[A-Za-z0-9_-]{20,}\\.[A-Za-z0-9_-]{20,}${E}` },
  { entity: 'API_TOKEN', provider: 'fly.io', re: `${B}fo1_[A-Za-z0-9_-]{43}${E}` },
  { entity: 'API_TOKEN', provider: 'intra42', re: `${B}s-s4t2(?:ud|af)-[a-f0-9]{64}${E}` },
  { entity: 'API_TOKEN', provider: 'sourcegraph', re: `${B}sgp_[a-fA-F0-9]{40}${E}` },
  { entity: 'API_TOKEN', provider: '1password', re: `${B}ops_eyJ[A-Za-z0-9+/=_-]{100,}` },
  { entity: 'API_TOKEN', provider: 'azure-ad', re: `${B}[A-Za-z0-9_~.-]{3}\\dQ~[A-Za-z0-9_~.-]{31,34}${E}`, score: 0.8, loose: true },
  { entity: 'API_TOKEN', provider: 'azure-devops', re: `${B}[A-Za-z0-9]{76}AZDO[A-Za-z0-9]{4}${E}` },
  { entity: 'API_TOKEN', provider: 'sonarqube', re: `${B}sq[pua]_[A-Za-z0-9]{40}${E}` },
  { entity: 'API_TOKEN', provider: 'okta', re: `${B}00[A-Za-z0-9_-]{40}${E}`, score: 0.7, loose: true },
  { entity: 'API_TOKEN', provider: 'truenas', re: `${B}\\d{1,4}-[A-Za-z0-9]{64}${E}`, score: 0.75, loose: true },
  { entity: 'API_TOKEN', provider: 'launchdarkly', re: `${B}(?:api|sdk)-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}${E}`, score: 0.8 },
  { entity: 'API_TOKEN', provider: 'planetscale', re: `${B}pscale_(?:tkn|oauth|pw)_[A-Za-z0-9_.-]{32,64}${E}` },
  { entity: 'API_TOKEN', provider: 'vercel', re: `${B}vercel_blob_rw_[A-Za-z0-9_-]{24,60}${E}` },
  { entity: 'API_TOKEN', provider: 'supabase', re: `${B}sb(?:p|_secret)_[A-Za-z0-9_]{32,64}${E}` },
  { entity: 'API_TOKEN', provider: 'easypost', re: `${B}EZ[AT]K[a-zA-Z0-9]{54}${E}` },
  { entity: 'API_TOKEN', provider: 'shippo', re: `${B}shippo_(?:live|test)_[a-f0-9]{40}${E}` },
  { entity: 'API_TOKEN', provider: 'frame.io', re: `${B}fio-u-[A-Za-z0-9_=-]{64}${E}` },
  { entity: 'API_TOKEN', provider: 'prefect', re: `${B}pnu_[A-Za-z0-9]{36}${E}` },
  { entity: 'API_TOKEN', provider: 'readme', re: `${B}rdme_[a-z0-9]{70}${E}` },
  { entity: 'API_TOKEN', provider: 'scalingo', re: `${B}tk-us-[A-Za-z0-9_-]{48}${E}` },
  { entity: 'API_TOKEN', provider: 'infracost', re: `${BS}ico-[A-Za-z0-9]{32}${E}` },
  { entity: 'API_TOKEN', provider: 'octopus-deploy', re: `${BS}API-[A-Z0-9]{26}${E}`, score: 0.8 },
  { entity: 'API_TOKEN', provider: 'openshift', re: `${B}sha256~[A-Za-z0-9_-]{43}${E}` },
  { entity: 'API_TOKEN', provider: 'stripe-webhook', re: `${B}whsec_[A-Za-z0-9+/=]{32,100}${E}` },
  { entity: 'API_TOKEN', provider: 'grafana-legacy', re: `${B}eyJrIjoi[A-Za-z0-9+/=_-]{50,300}` },
  { entity: 'PRIVATE_KEY', provider: '1password-secret-key', re: `${B}A3-[A-Z0-9]{6}-[A-Z0-9]{6}-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}${E}` },
  {
    entity: 'PASSWORD_HASH',
    provider: 'apr1-phpass-pbkdf2',
    re: `(?:\\$apr1\\$[./A-Za-z0-9]{1,8}\\$[./A-Za-z0-9]{22}|\\$[PH]\\$[./A-Za-z0-9]{31}|${B}pbkdf2_sha(?:1|256|512)\\$\\d{4,7}\\$[A-Za-z0-9]{1,64}\\$[A-Za-z0-9+/=]{32,100})`,
  },
  { entity: 'PASSWORD_HASH', provider: 'crypt', re: `(?:\\$2[abxy]?\\$\\d{2}\\$[./A-Za-z0-9]{53}|\\$[156]\\$(?:rounds=\\d{1,7}\\$)?[./A-Za-z0-9]{1,16}\\$[./A-Za-z0-9]{22,86}|\\$argon2(?:id|i|d)\\$[^\\s$]{1,40}\\$[^\\s$]{1,40}\\$[A-Za-z0-9+/]{16,}\\$[A-Za-z0-9+/]{16,})` },
  { entity: 'PASSWORD_HASH', provider: 'kerberos', re: `\\$krb5(?:asrep|tgs)\\$\\d{2}\\$[^\\s]{20,4000}` },
  { entity: 'PRIVATE_KEY', provider: 'age', re: `${B}AGE-SECRET-KEY-1[0-9A-Z]{58}${E}` },
  { entity: 'PRIVATE_KEY', provider: 'putty', re: `PuTTY-User-Key-File-\\d: ` },
];

/**
 * The fixed characters a rule's pattern starts with ("ghp_" for GitHub), so a placeholder check looks at the
 * random part only: `GR1348941` followed by `1231231…` is filler even though the prefix has many distinct characters.
 */
export function literalPrefix(re: string): string {
  let src = re.startsWith(B) ? re.slice(B.length) : re;
  let out = '';
  while (src.length > 0) {
    const escaped = src[0] === '\\' && /^\\[.~+$-]/.test(src);
    const ch = escaped ? src[1] : src[0];
    if (!escaped && !/[A-Za-z0-9_~:!-]/.test(ch)) break;
    const next = src[escaped ? 2 : 1];
    if (next === '?' || next === '*' || next === '{') break; // optional or repeated: not fixed
    out += ch;
    src = src.slice(escaped ? 2 : 1);
  }
  return out;
}

/**
 * Services whose name in an assignment marks the value as their credential (`cloudflare: "…"`), matched as a
 * case-insensitive alternation. Only distinctive names: words of ordinary English (box, zoom, segment) are left out.
 */
export const VENDOR_WORDS = [
  'cloudflare', 'okta', 'auth0', 'postmark', 'sonar(?:qube|cloud)?', 'sumologic', 'heroku', 'hubspot', 'snyk', 'twilio',
  'sendgrid', 'mailgun', 'mailchimp', 'mandrill', 'datadog', 'new_?relic', 'pagerduty', 'opsgenie', 'sentry', 'rollbar',
  'bugsnag', 'honeybadger', 'logdna', 'loggly', 'papertrail', 'splunk', 'dynatrace', 'algolia', 'firebase', 'supabase',
  'vercel', 'netlify', 'digitalocean', 'linode', 'vultr', 'cloudinary', 'contentful', 'mixpanel', 'amplitude', 'circleci',
  'travis', 'codecov', 'codeclimate', 'coveralls', 'artifactory', 'jfrog', 'pulumi', 'openai', 'anthropic', 'cohere',
  'huggingface', 'pinecone', 'mapbox', 'twitch', 'discord', 'telegram', 'dropbox', 'salesforce', 'zendesk', 'intercom',
  'freshdesk', 'airtable', 'asana', 'trello', 'clickup', 'figma', 'postman', 'doppler', 'launchdarkly', 'fastly', 'ngrok',
  'plaid', 'coinbase', 'binance', 'shopify', 'stripe', 'braintree', 'paypal', 'github', 'gitlab', 'bitbucket', 'atlassian',
  'jira', 'slack', 'facebook', 'twitter', 'linkedin', 'pusher', 'nexmo', 'vonage', 'messagebird', 'plivo', 'thingsboard',
  'blynk', 'adafruit', 'cloudant', 'softlayer', 'jenkins', 'teamcity', 'octopus', 'infracost', 'databricks', 'snowflake',
].join('|');

/** Short provider values that need their vendor's name beside them to be told apart from ordinary words. */
export const VENDOR_SHAPES: { vendor: RegExp; shape: RegExp }[] = [
  { vendor: /sumo/i, shape: /^su[A-Za-z0-9]{12}$/ }, // Sumo Logic access id
  { vendor: /sumo/i, shape: /^[A-Za-z0-9]{64}$/ }, // Sumo Logic access key
  { vendor: /cloudflare/i, shape: /^[a-f0-9]{37}$/ }, // Cloudflare global API key
  { vendor: /postmark/i, shape: /^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$/ }, // server / account token
  { vendor: /heroku/i, shape: /^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$/ }, // legacy API key
];
