# The README's two commands: `make demo` (the main job) and `make test` (every suite).
SHELL := /bin/bash
NPM_STAMP := node_modules/.package-lock.json

.PHONY: demo test install build lint bench bench-peers eval eval-peers manifests image e2e e2e-kind clean models train

$(NPM_STAMP): package-lock.json
	npm ci --no-audit --no-fund

install: $(NPM_STAMP)

build: install
	npm run build

lint: install
	npm run lint

demo: build
	node dist/scripts/demo.js

# Installs, builds, lints, builds or reuses kube-apiserver/etcd/helm (cached outside the repo; skipped
# loudly without Go), installs wrk and redis-server (Debian) for the load-generator and shared-limits tests, the
# differential upstream's pinned FastAPI/uvicorn venv (PyPI; its tests skip loudly without it) and the model-tier
# weights (make models), then runs every jest suite once, then the real-cluster scenario of `make e2e` (one loud
# line when this machine cannot: not root, no Go), and prints one totals line.
test:
	npm ci --no-audit --no-fund
	npm run build
	npm run lint
	bash test/integration/k8s-tools.sh
	bash bench/peers/install.sh wrk redis differential
	bash scripts/models.sh
	bash scripts/test-all.sh

bench: build
	npm run bench

# The model tier's weights and tokenizer, verified by sha256, into MODELS_DIR (default ~/.cache/akto-agent-proxy/models).
models:
	bash scripts/models.sh

# Retrains the committed classifier heads from the labelled data (tune half only); see classifier/heads/DATA_CARD.md.
train: build models
	npm run train -- --data ../shared/eval

eval: build
	npm run eval

# Side by side with nginx, Portkey and LiteLLM (installed on first use outside the repo); see bench/README.md.
bench-peers: build
	npm run bench:peers

eval-peers: build
	npm run eval:peers

# The chart rendered with default values, checked in; a test fails when it is stale.
manifests:
	bash test/integration/k8s-tools.sh helm
	bash scripts/render-manifests.sh

# Needs a container engine that can pull node:20-bookworm-slim (make e2e builds against a local base instead).
image:
	docker build -t akto-agent-proxy:$$(node -p 'require("./package.json").version') .

# A real single-node cluster (kubelet, containerd, kube-proxy...) in a network namespace of its own, built and
# cached on first use; the image built from the Dockerfile; docs/install.md end to end; torn down afterwards.
# Needs root; see docs/install.md "Tests against Kubernetes".
e2e: install
	bash test/cluster/e2e.sh run

# For machines with Docker and kind: a kind cluster, the image loaded, helm install, a labelled namespace, a sample agent.
e2e-kind:
	bash scripts/e2e-kind.sh

clean:
	rm -rf dist coverage .cache
