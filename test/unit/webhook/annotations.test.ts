import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ANNOTATIONS, PREFIX, parseAnnotations, renderAnnotationsDoc } from '../../../webhook/annotations';

describe('annotation schema', () => {
  it('docs/annotations.md is generated from the schema (UPDATE_GOLDEN=1 rewrites it)', () => {
    const path = join(__dirname, '../../../docs/annotations.md');
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(path, renderAnnotationsDoc());
    expect(readFileSync(path, 'utf8')).toBe(renderAnnotationsDoc());
  });

  it('every declared annotation accepts its documented example', () => {
    for (const d of ANNOTATIONS) {
      const r = parseAnnotations({ [PREFIX + d.name]: d.example });
      expect(r.errors).toEqual([]);
      expect(r.overrides[d.field]).toBeDefined();
    }
  });

  it('parses typed values', () => {
    const r = parseAnnotations({
      [`${PREFIX}env-vars`]: ' A_URL , B_URL ,',
      [`${PREFIX}port`]: '18080',
      [`${PREFIX}native-sidecar`]: 'false',
      [`${PREFIX}memory-limit`]: '1.5Gi',
      'other.io/x': 'ignored',
    });
    expect(r.overrides).toEqual({ envVars: ['A_URL', 'B_URL'], port: 18080, nativeSidecar: false, memoryLimit: '1.5Gi' });
    expect(r.errors).toEqual([]);
    expect(r.unknown).toEqual([]);
  });

  const invalid: Array<[string, string, RegExp]> = [
    ['env-vars', ',', /at least one/],
    ['env-vars', 'A=B', /not a valid env var name/],
    ['policy-pack', 'Strict Pack', /lowercase/],
    ['log-level', 'verbose', /one of trace/],
    ['cpu-request', '100 m', /cpu quantity/],
    ['cpu-limit', '1\n- name: evil', /single line/],
    ['memory-request', '1GB', /memory quantity/],
    ['memory-limit', 'x'.repeat(2000), /at most 1024/],
    ['port', '80', /between 1024 and 65535/],
    ['port', '8080.5', /integer/],
    ['native-sidecar', 'yes', /"true" or "false"/],
  ];
  it.each(invalid)('%s=%j is rejected with a message naming the annotation', (name, value, message) => {
    const r = parseAnnotations({ [PREFIX + name]: value });
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0].annotation).toBe(PREFIX + name);
    expect(r.errors[0].message).toMatch(message);
    expect(r.overrides).toEqual({});
  });

  it('reports unknown annotations under our prefix but not the status annotation', () => {
    const r = parseAnnotations({ [`${PREFIX}log-levl`]: 'debug', [`${PREFIX}status`]: '{}' });
    expect(r.unknown).toEqual([`${PREFIX}log-levl`]);
  });

  it('tolerates a missing or odd annotations map', () => {
    for (const a of [undefined, null, 'x', [], { [`${PREFIX}port`]: 5 }]) {
      expect(() => parseAnnotations(a)).not.toThrow();
    }
    expect(parseAnnotations({ [`${PREFIX}port`]: 5 }).errors[0].message).toBe('must be a string');
  });
});
