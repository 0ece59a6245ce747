#!/usr/bin/env bash
# End to end on a throwaway kind cluster (`make e2e-kind`). Needs docker (or podman), kind, kubectl and helm.
# NOT run in CI here: the CI machines have no container engine. What it proves that test/integration cannot:
# real kubelets start the injected sidecar, its probes pass, and `kubectl logs -c akto-proxy` shows its log lines.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${KIND_CLUSTER:-akto-agent-proxy-e2e}
VERSION=$(node -p 'require("./package.json").version')
IMAGE=${IMAGE:-akto-agent-proxy:$VERSION}
NS=akto-agent-proxy
AGENTS=agents-e2e
KEEP=${KEEP_CLUSTER:-0}

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "e2e-kind: $tool is required" >&2; exit 1; }
done

cleanup() { [[ $KEEP == 1 ]] || kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; }
trap cleanup EXIT

step() { echo "==> $*"; }

step "build $IMAGE"
docker build -t "$IMAGE" .

step "kind cluster $CLUSTER"
kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 120s
kind load docker-image "$IMAGE" --name "$CLUSTER"

step "helm install"
kubectl create namespace "$AGENTS" --dry-run=client -o yaml | kubectl apply -f -
helm upgrade --install akto-agent-proxy charts/akto-agent-proxy -n "$NS" --create-namespace \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" --set image.pullPolicy=Never \
  --set "agentNamespaces={$AGENTS}" --set policy.pack=default --wait --timeout 180s
helm test akto-agent-proxy -n "$NS" --timeout 120s

step "label $AGENTS and deploy a sample agent (stub upstream + an agent that calls it through the sidecar)"
kubectl label namespace "$AGENTS" agent-proxy.akto.io/injection=enabled --overwrite
kubectl apply -n "$AGENTS" -f - <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: stub-llm
  labels: { app: stub-llm, agent-proxy.akto.io/inject: "false" }
spec:
  containers:
    - name: stub
      image: $IMAGE
      command: ["node", "-e", "require('http').createServer((q,s)=>{s.setHeader('content-type','application/json');s.end(JSON.stringify({id:'c1',object:'chat.completion',model:'m',choices:[{index:0,message:{role:'assistant',content:'hello from stub'},finish_reason:'stop'}]}))}).listen(8000)"]
---
apiVersion: v1
kind: Service
metadata: { name: stub-llm }
spec: { selector: { app: stub-llm }, ports: [{ port: 8000 }] }
---
apiVersion: v1
kind: Pod
metadata:
  name: agent
spec:
  containers:
    - name: agent
      image: $IMAGE
      env:
        - { name: OPENAI_BASE_URL, value: "http://stub-llm.$AGENTS.svc:8000/v1" }
      command: ["node", "-e", "setInterval(async()=>{try{const r=await fetch(process.env.OPENAI_BASE_URL+'/chat/completions',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({model:'m',messages:[{role:'user',content:'hi'}]})});console.log(r.status,await r.text())}catch(e){console.log('error',e.message)}},2000)"]
YAML
kubectl -n "$AGENTS" wait --for=condition=Ready pod/stub-llm pod/agent --timeout 180s

step "checks"
kubectl -n "$AGENTS" get pod agent -o jsonpath='{.metadata.annotations.agent-proxy\.akto\.io/status}'; echo
kubectl -n "$AGENTS" get pod agent -o jsonpath='{range .spec.containers[0].env[*]}{.name}={.value}{"\n"}{end}' | grep -q '^OPENAI_BASE_URL=http://127.0.0.1:' \
  || { echo "FAIL: OPENAI_BASE_URL was not rewritten" >&2; exit 1; }
for _ in $(seq 1 30); do
  kubectl -n "$AGENTS" logs agent -c agent | grep -q 'hello from stub' && break
  sleep 2
done
kubectl -n "$AGENTS" logs agent -c agent | grep -q 'hello from stub' || { echo "FAIL: the agent got no answer through the sidecar" >&2; exit 1; }
kubectl -n "$AGENTS" logs agent -c akto-proxy | tail -5
[[ -n $(kubectl -n "$AGENTS" logs agent -c akto-proxy) ]] || { echo "FAIL: no sidecar logs" >&2; exit 1; }
echo "PASS: injected, URL rewritten, traffic through the sidecar, logs readable with kubectl logs -c akto-proxy"
