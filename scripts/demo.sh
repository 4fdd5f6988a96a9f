#!/usr/bin/env bash
# The demo, from a fresh machine: installs prerequisites, builds, starts mini-apiserver on the
# embedded store and drives it with upstream kubectl. Until the node agents land (kubelet,
# proxy, DNS) the demo stops at the API: the Deployment and Service are stored, validated,
# defaulted and allocated exactly as Kubernetes would, and nothing runs them yet.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/minicluster-target}"
cargo build --release -p apiserver --quiet

state="${MINICLUSTER_DEMO_DIR:-/tmp/minicluster-demo}"
rm -rf "$state" && mkdir -p "$state"
port="${MINICLUSTER_DEMO_PORT:-6443}"
"$CARGO_TARGET_DIR/release/mini-apiserver" --listen "127.0.0.1:$port" \
    --store "embedded:$state/state.db" --write-kubeconfig "$state/kubeconfig" \
    2> "$state/apiserver.log" &
apiserver=$!
trap 'kill $apiserver 2>/dev/null; wait $apiserver 2>/dev/null || true' EXIT
export KUBECONFIG="$state/kubeconfig"
kubectl=.tools/kubectl
for _ in $(seq 1 100); do
    "$kubectl" get --raw /readyz >/dev/null 2>&1 && break
    sleep 0.1
done

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
step "$kubectl" version
step "$kubectl" get namespaces
step "$kubectl" apply -f examples/demo-web.yaml
step "$kubectl" get deployments,services,configmaps -o wide
step "$kubectl" scale deployment demo-web --replicas=5
step "$kubectl" set image deployment/demo-web web=demo-web:v2
step "$kubectl" describe deployment demo-web
step "$kubectl" explain deployment.spec.strategy
echo
echo "mini-apiserver is serving at http://127.0.0.1:$port (kubeconfig: $KUBECONFIG); it stops when this script exits."
