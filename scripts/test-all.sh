#!/usr/bin/env bash
# Runs every jest suite in one process tree and ends with the plain totals line CI reads.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache
results=.cache/jest-results.json
rm -f "$results"
# --expose-gc lets the memory-bound tests measure a settled heap instead of skipping that assertion.
node --expose-gc node_modules/.bin/jest --ci --json --outputFile="$results" "$@"
status=$?
node scripts/test-summary.js "$results" || status=1
exit $status
