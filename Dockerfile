# One image, two commands, from WORKDIR /app:
#   proxy (the injected sidecar):  node dist/proxy/main.js     (the default CMD)
#   admission webhook:             node dist/webhook/main.js
# Build: make image   (docker build -t akto-agent-proxy:<version> .)
# Each program is one bundled file (npm run bundle): the image carries no node_modules, so the sidecar does not
# ship the webhook's Kubernetes client. glibc base (Debian slim): the model tier's ONNX Runtime needs glibc.
# NODE_IMAGE (build) must provide node >= 20.19 and npm; RUNTIME_IMAGE only node. `make e2e` passes bases assembled
# from the machine's own Node.js (test/cluster/images.sh).
ARG NODE_IMAGE=node:20-bookworm-slim
ARG RUNTIME_IMAGE=${NODE_IMAGE}

# 1. Bundle from the TypeScript sources with every dev dependency (esbuild).
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# The context is an allowlist (.dockerignore): tsconfig.json, scripts/bundle.js, proxy/, webhook/.
COPY . ./
RUN npm run bundle

# 2. Runtime: node and the two bundles.
FROM ${RUNTIME_IMAGE}
ENV NODE_ENV=production
# /app is read-only to the runtime user; outside Kubernetes the spool (and the local trace file) go to /tmp.
# The webhook points SPOOL_DIR at an emptyDir instead.
ENV SPOOL_DIR=/tmp/akto-agent-proxy/spool
WORKDIR /app
# Files are root-owned and read-only to the runtime user; numeric uid so runAsNonRoot can be verified.
COPY --from=build --chown=0:0 /src/dist/bundle/ ./dist/
USER 65532:65532
EXPOSE 8080 9090 8443
CMD ["node", "dist/proxy/main.js"]
