// Prints "N passed, N failed, N skipped" from jest --json result files: the first must exist; the others
// (the real-cluster run of make e2e) count when they exist.
const fs = require('node:fs');

const [first, ...optional] = process.argv.slice(2);
const totals = { passed: 0, failed: 0, skipped: 0 };
for (const file of [first, ...optional]) {
  let r;
  try {
    r = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if (file !== first && e.code === 'ENOENT') continue;
    console.log(`0 passed, 1 failed (no jest results in ${file}: ${e.message})`);
    process.exit(1);
  }
  // Suites that failed to run (syntax errors, hooks that threw) count as failures too.
  const brokenSuites = r.testResults.filter((s) => s.status === 'failed' && s.assertionResults.length === 0).length;
  totals.passed += r.numPassedTests;
  totals.failed += r.numFailedTests + brokenSuites;
  totals.skipped += r.numPendingTests + r.numTodoTests;
}
console.log(`${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(totals.failed > 0 ? 1 : 0);
