# The README's two commands: `make demo` (the main job) and `make test` (every suite).
SHELL := /bin/bash
NPM_STAMP := node_modules/.package-lock.json

.PHONY: demo test install build lint unit bench bench-webhook eval manifests image e2e-kind clean

$(NPM_STAMP): package-lock.json
	npm ci --no-audit --no-fund

install: $(NPM_STAMP)

build: install
	npm run build

lint: install
	npm run lint

demo: build
	node dist/scripts/demo.js

# Installs, builds, lints, then runs every jest suite once and prints one totals line.
test:
	npm ci --no-audit --no-fund
	npm run build
	npm run lint
	bash scripts/test-all.sh

bench: build
	npm run bench

eval: build
	npm run eval

clean:
	rm -rf dist coverage .cache
