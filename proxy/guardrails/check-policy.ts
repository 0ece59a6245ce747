#!/usr/bin/env node
/**
 * `node dist/proxy/guardrails/check-policy.js FILE...`: validate policy files the way the proxy would load them
 * (schema, extends, detector entities, RE2 patterns) without starting anything — for CI and before a ConfigMap
 * update. Prints the effective rules, or every problem with its JSON path; exit code 2 when any file is invalid.
 */
import { loadPolicyFile, PolicyError } from '../policy/load';
import { compilePolicy } from './compile';
import { builtinDetectors } from './detectors';

/** Check each file, writing a report through `write`; returns the exit code. */
export function checkPolicies(files: readonly string[], write: (s: string) => void): number {
  if (files.length === 0) {
    write('usage: check-policy FILE...\n');
    return 2;
  }
  const detectors = builtinDetectors();
  let failed = false;
  for (const file of files) {
    try {
      const policy = loadPolicyFile(file, [(p, source) => void compilePolicy(p, detectors, source)]);
      const rules = policy.guardrails.rules.map((r) => `${r.id} (${r.category ?? r.detector}, ${r.stage ?? 'both'}, ${r.action}${r.mode === 'monitor' || policy.guardrails.mode === 'monitor' ? ', monitor' : ''})`);
      write(`${file}: ok, policy "${policy.name}", ${rules.length} rules\n${rules.map((r) => `  ${r}\n`).join('')}`);
    } catch (err) {
      failed = true;
      const problems = err instanceof PolicyError ? err.problems : [String(err)];
      write(`${file}: invalid\n${problems.map((p) => `  ${p}\n`).join('')}`);
    }
  }
  return failed ? 2 : 0;
}

if (require.main === module) process.exitCode = checkPolicies(process.argv.slice(2), (s) => process.stdout.write(s));
