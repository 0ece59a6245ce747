import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The files `make models` (scripts/models.sh) puts in MODELS_DIR. */
export const MODEL_FILES = ['model.onnx', 'tokenizer.json', 'tokenizer_config.json'] as const;

/** MODELS_DIR, or where `make models` puts the files by default (~/.cache/akto-agent-proxy/models). */
export function modelsDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (env.MODELS_DIR) return path.resolve(env.MODELS_DIR);
  const cache = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'akto-agent-proxy', 'models');
}

/** The model files missing from `dir` (empty when the model tier can start). */
export function missingModelFiles(dir: string): string[] {
  return MODEL_FILES.filter((f) => !existsSync(path.join(dir, f)));
}
