/**
 * Offline check: runs the webhook's own inject() on a manifest and prints the decision, the
 * warnings kubectl would show, and the resulting pod (or the JSON Patch).
 *
 *   node dist/webhook/explain.js deployment.yaml [--namespace agents] [--enforced] [--native|--classic] [--patch]
 *
 * `--enforced` judges the pods as in a namespace labelled agent-proxy.akto.io/injection=enforced.
 * Settings come from WEBHOOK_SETTINGS_FILE / env, as for the webhook. Workloads (Deployment, Job,
 * CronJob, ...) are checked through their pod template.
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments, stringify } from 'yaml';
import { ClusterInfo, inject, InjectResult } from './inject';
import { JsonObject, PatchBuilder, isJsonObject as isObject } from './patch';
import { loadSettings, Settings } from './settings';

export interface ExplainOptions {
  namespace?: string;
  /** As in a namespace labelled injection=enforced. */
  enforced?: boolean;
  cluster: ClusterInfo;
  showPatch: boolean;
}

/** The pod (template) of a manifest: a Pod, a workload's spec.template, or a CronJob's jobTemplate. */
export function podOf(doc: unknown): JsonObject | undefined {
  if (!isObject(doc)) return undefined;
  if (doc.kind === 'Pod') return doc;
  const spec = isObject(doc.spec) ? doc.spec : undefined;
  const jobSpec = spec && isObject(spec.jobTemplate) && isObject(spec.jobTemplate.spec) ? spec.jobTemplate.spec : undefined;
  const template = jobSpec && isObject(jobSpec.template) ? jobSpec.template : spec && isObject(spec.template) ? spec.template : undefined;
  return template;
}

export function explain(text: string, opts: ExplainOptions, settings: Settings): string {
  const out: string[] = [];
  for (const d of parseAllDocuments(text)) {
    const doc = d.toJS() as unknown;
    if (doc === null || doc === undefined) continue;
    const kind = isObject(doc) && typeof doc.kind === 'string' ? doc.kind : '?';
    const meta = isObject(doc) && isObject(doc.metadata) ? doc.metadata : {};
    const name = `${kind}/${typeof meta.name === 'string' ? meta.name : '?'}`;
    const pod = podOf(doc);
    if (!pod) {
      out.push(`# ${name}: no pod template; nothing to inject`);
      continue;
    }
    const namespace = opts.namespace ?? (typeof meta.namespace === 'string' ? meta.namespace : 'default');
    const r: InjectResult = inject(pod, { name: namespace, enforced: opts.enforced === true }, settings, opts.cluster);
    out.push(`# ${name} in namespace ${namespace}: ${r.status} (${r.reason})${r.message ? `: ${r.message}` : ''}`);
    for (const w of r.warnings) out.push(`# warning: ${w}`);
    if (r.patch.length === 0) continue;
    if (opts.showPatch) {
      out.push(JSON.stringify(r.patch, null, 2));
    } else {
      const b = new PatchBuilder(pod);
      for (const op of r.patch) {
        if (op.op === 'remove') b.remove(op.path);
        else if (op.op === 'replace') b.replace(op.path, op.value);
        else b.add(op.path, op.value);
      }
      out.push('---', stringify(b.doc).trimEnd());
    }
  }
  return out.join('\n') + '\n';
}

function main(argv: string[]): number {
  let file: string | undefined;
  let namespace: string | undefined;
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--namespace') namespace = argv[++i];
    else if (argv[i].startsWith('--')) flags.add(argv[i]);
    else file ??= argv[i];
  }
  if (!file || flags.has('--help')) {
    process.stderr.write('usage: explain <manifest.yaml|-> [--namespace NS] [--enforced] [--native|--classic] [--patch]\n');
    return 2;
  }
  const settings = loadSettings();
  const text = readFileSync(file === '-' ? 0 : file, 'utf8');
  const cluster = { nativeSidecars: flags.has('--native') || (!flags.has('--classic') && settings.nativeSidecar === 'always') };
  process.stdout.write(explain(text, { namespace, enforced: flags.has('--enforced'), cluster, showPatch: flags.has('--patch') }, settings));
  return 0;
}

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`explain: ${(err as Error).message}\n`);
    process.exitCode = 2;
  }
}
