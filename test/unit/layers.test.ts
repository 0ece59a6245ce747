import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Imports only point down. common/ is shared by the programs and imports none of them; the webhook imports
 * only common/; inside proxy/ a folder (or top-level file) imports its own layer or lower ones, never higher.
 */
const ROOT = path.resolve(__dirname, '../..');

/** Lower number = lower layer. Keyed by path relative to the repo root, longest prefix wins. */
const PROXY_LAYERS: Record<string, number> = {
  'proxy/http': 1,
  'proxy/protocols': 1,
  'proxy/telemetry': 1,
  'proxy/policy': 2,
  'proxy/hooks.ts': 2,
  'proxy/guardrails': 3,
  'proxy/limits': 3,
  'proxy/akto': 3,
  'proxy/ingest': 3,
  'proxy/alerts': 3,
  'proxy/config.ts': 4,
  'proxy/env.ts': 4,
  'proxy/self-target.ts': 4,
  'proxy/server.ts': 4,
  'proxy/flight': 4,
  'proxy/app.ts': 5,
  'proxy/main.ts': 6,
};

function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)));
}

/** Repo-relative targets of a file's relative imports (static, type-only, require and dynamic import). */
function importsOf(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s+|\brequire\(\s*|\bimport\(\s*)'(\.{1,2}\/[^']+)'/g)) {
    out.push(path.relative(ROOT, path.resolve(path.dirname(path.join(ROOT, file)), m[1])));
  }
  return out;
}

function layerOf(file: string): number | undefined {
  const key = Object.keys(PROXY_LAYERS)
    .filter((k) => file === k || file === k.replace(/\.ts$/, '') || file.startsWith(`${k}/`))
    .sort((a, b) => b.length - a.length)[0];
  return key === undefined ? undefined : PROXY_LAYERS[key];
}

const topFolder = (file: string): string => file.split('/')[0];

describe('layers', () => {
  it('common/ imports nothing from the programs', () => {
    const bad = sources('common').flatMap((f) => importsOf(f).filter((t) => topFolder(t) !== 'common' && !t.endsWith('package.json')).map((t) => `${f} -> ${t}`));
    expect(bad).toEqual([]);
  });

  it('webhook/ imports only itself and common/', () => {
    const bad = sources('webhook').flatMap((f) => importsOf(f).filter((t) => !['webhook', 'common', 'package.json'].includes(topFolder(t))).map((t) => `${f} -> ${t}`));
    expect(bad).toEqual([]);
  });

  it('every proxy/ source has a layer', () => {
    expect(sources('proxy').filter((f) => layerOf(f) === undefined)).toEqual([]);
  });

  it('inside proxy/, no import points up', () => {
    const bad: string[] = [];
    for (const f of sources('proxy')) {
      for (const t of importsOf(f)) {
        if (topFolder(t) !== 'proxy') {
          // The proxy may use common/ and, for the in-process model tier, the classifier library; never the webhook.
          if (topFolder(t) === 'webhook') bad.push(`${f} -> ${t}`);
          continue;
        }
        if ((layerOf(t) ?? 0) > layerOf(f)!) bad.push(`${f} (layer ${layerOf(f)}) -> ${t} (layer ${layerOf(t)})`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('ranks protocols below the hook seam and every detector with its feature', () => {
    expect(layerOf('proxy/protocols/stream.ts')).toBeLessThan(layerOf('proxy/hooks.ts')!);
    expect(layerOf('proxy/guardrails/detectors/size.ts')).toBe(3);
  });
});
