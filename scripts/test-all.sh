#!/usr/bin/env bash
# Runs every jest suite in one process tree, then the real-cluster scenario (test/cluster/e2e.sh auto), and ends
# with the plain totals line CI reads.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache
results=.cache/jest-results.json
rm -f "$results"
# --expose-gc lets the memory-bound tests measure a settled heap instead of skipping that assertion.
node --expose-gc node_modules/.bin/jest --ci --json --outputFile="$results" "$@"
status=$?
e2e_results=.cache/jest-e2e-results.json
rm -f "$e2e_results"
# The full run (make test) also runs the real cluster (make e2e; about 4 min warm, 8 min when every image must be
# built), or says in one loud line why this machine cannot.
if [[ $# == 0 ]]; then bash test/cluster/e2e.sh auto || status=1; fi
node scripts/test-summary.js "$results" "$e2e_results" || status=1
exit $status
