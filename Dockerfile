# One image, two commands, from WORKDIR /app:
#   proxy (the injected sidecar):  node dist/proxy/main.js     (the default CMD)
#   admission webhook:             node dist/webhook/main.js
# Build: make image   (docker build -t akto-agent-proxy:<version> .)
ARG NODE_IMAGE=node:20-alpine

# 1. Compile TypeScript with every dev dependency.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY proxy ./proxy
COPY webhook ./webhook
COPY bench ./bench
COPY scripts ./scripts
COPY test ./test
RUN npm run build

# 2. Production dependencies only (no compiler, no test tools).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
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
# Files are root-owned and read-only to the runtime user; numeric uid so runAsNonRoot can be verified.
USER 65532:65532
EXPOSE 8080 9090 8443
CMD ["node", "dist/proxy/main.js"]
