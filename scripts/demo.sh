#!/usr/bin/env bash
# The demo, from a fresh machine: installs prerequisites, builds, starts the control plane
# (mini-apiserver on the embedded store, mini-controller-manager, mini-scheduler) and drives it
# with upstream kubectl. Until the node agents land (kubelet, proxy, DNS) there are no nodes:
# the Deployment gets its ReplicaSet and Pods, and the scheduler reports why they stay Pending.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/minicluster-target}"
cargo build --release -p apiserver -p controllers -p scheduler --quiet

state="${MINICLUSTER_DEMO_DIR:-/tmp/minicluster-demo}"
rm -rf "$state" && mkdir -p "$state"
port="${MINICLUSTER_DEMO_PORT:-6443}"
"$CARGO_TARGET_DIR/release/mini-apiserver" --listen "127.0.0.1:$port" \
    --store "embedded:$state/state.db" --write-kubeconfig "$state/kubeconfig" \
    2> "$state/apiserver.log" &
pids=($!)
trap 'kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null || true' EXIT
export KUBECONFIG="$state/kubeconfig"
kubectl=.tools/kubectl
for _ in $(seq 1 100); do
    "$kubectl" get --raw /readyz >/dev/null 2>&1 && break
    sleep 0.1
done
"$CARGO_TARGET_DIR/release/mini-controller-manager" --kubeconfig "$KUBECONFIG" --secure-port 0 \
    2> "$state/controller-manager.log" &
pids+=($!)
"$CARGO_TARGET_DIR/release/mini-scheduler" --kubeconfig "$KUBECONFIG" --secure-port 0 \
    2> "$state/scheduler.log" &
pids+=($!)

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
step "$kubectl" version
step "$kubectl" get namespaces
step "$kubectl" apply -f examples/demo-web.yaml
sleep 3
step "$kubectl" get deployments,replicasets,pods,services,endpoints -o wide
step "$kubectl" scale deployment demo-web --replicas=5
step "$kubectl" set image deployment/demo-web web=demo-web:v2
sleep 2
step "$kubectl" rollout history deployment/demo-web
step "$kubectl" describe deployment demo-web
step "$kubectl" get events --field-selector reason=FailedScheduling
step "$kubectl" explain deployment.spec.strategy
echo
echo "The control plane served at http://127.0.0.1:$port (kubeconfig: $KUBECONFIG; logs in $state); it stops when this script exits."
