import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, envTableMarkdown } from '../../common/env';
import { loadIngestConfig } from '../../proxy/ingest/config';
import { PROXY_ENV } from '../../proxy/env';

const ROOT = path.resolve(__dirname, '../..');

function proxySources(): string[] {
  return readdirSync(path.join(ROOT, 'proxy'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)));
}

describe("the proxy's environment declarations", () => {
  it('drive the README variable table (regenerate the block between the proxy-env markers from PROXY_ENV)', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const block = /<!-- proxy-env:start -->\n([\s\S]*?)\n<!-- proxy-env:end -->/.exec(readme);
    expect(block).not.toBeNull();
    expect(block![1]).toBe(envTableMarkdown(PROXY_ENV));
  });

  it('name each variable once, each with a doc', () => {
    const names = PROXY_ENV.map((v) => v.name);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
    expect(PROXY_ENV.filter((v) => v.doc.trim() === '' || v.doc.includes('|')).map((v) => v.name)).toEqual([]);
  });

  it('are the only way proxy/ reads the environment', () => {
    const direct = /\benv\.[A-Z][A-Z0-9_]*|\benv\[|\benv(?:String|Int|Number|Port|Enum|Bool|Url|List|Required)\(/;
    const offenders = proxySources().filter((f) => direct.test(readFileSync(path.join(ROOT, f), 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('a bad value is a ConfigError naming the variable', () => {
    const bad: Record<string, string> = { AKTO_BATCH_SIZE: 'lots', SPOOL_WRITE_AHEAD: 'maybe', AKTO_API_BASE_URL: 'ftp://x', AKTO_TIME_UNIT: 'hours' };
    for (const [key, value] of Object.entries(bad)) {
      let err: unknown;
      try {
        loadIngestConfig({ [key]: value });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).key).toBe(key);
    }
  });
});
