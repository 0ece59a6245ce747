// Prints "N passed, N failed, N skipped" from a jest --json result file.
const fs = require('node:fs');

const file = process.argv[2];
let r;
try {
  r = JSON.parse(fs.readFileSync(file, 'utf8'));
} catch (e) {
  console.log(`0 passed, 1 failed (no jest results in ${file}: ${e.message})`);
  process.exit(1);
}
// Suites that failed to run (syntax errors, hooks that threw) count as failures too.
const brokenSuites = r.testResults.filter((s) => s.status === 'failed' && s.assertionResults.length === 0).length;
const failed = r.numFailedTests + brokenSuites;
const skipped = r.numPendingTests + r.numTodoTests;
console.log(`${r.numPassedTests} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
