#!/usr/bin/env bash
# The demo, from a fresh machine (as root): installs prerequisites, builds every component and
# the node images, starts a local 2-node cluster on the embedded store (`minictl cluster up`),
# deploys demo-web, exposes it as a NodePort Service, and shows it answering through the
# Service's DNS name from a pod and through the NodePort on every node. The cluster keeps
# running afterwards; `minictl cluster down --name demo` removes it.
#
# Environment: CARGO_TARGET_DIR (default /var/tmp/minicluster-target), MINICLUSTER_DEMO_NAME
# (default demo), MINICLUSTER_DEMO_NODES (default 2).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/minicluster-target}"
name="${MINICLUSTER_DEMO_NAME:-demo}"
nodes="${MINICLUSTER_DEMO_NODES:-2}"

echo "building the components (release) ..."
cargo build --release --quiet -p apiserver -p controllers -p scheduler -p runtime -p kubelet \
    -p proxy -p dns -p minictl -p localcluster
bin="$CARGO_TARGET_DIR/release"
images="$CARGO_TARGET_DIR/images"
echo "building the node images ..."
scripts/build-images.sh --out "$images" >/dev/null

minictl="$bin/minictl"
kubeconfig="$CARGO_TARGET_DIR/demo-$name.kubeconfig"
"$minictl" cluster down --name "$name" >/dev/null 2>&1 || true
rm -f "$kubeconfig"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
step "$minictl" cluster up --name "$name" --nodes "$nodes" --images "$images" --kubeconfig "$kubeconfig"
export KUBECONFIG="$kubeconfig"
step "$minictl" get nodes -o wide
step "$minictl" deploy web --image demo-web:v1 --replicas 3 --port 8080
step "$minictl" expose deployment web --port 80 --target-port 8080 --type NodePort
step "$minictl" rollout status deployment/web
step "$minictl" get deploy,rs,pods,svc -o wide

# A client pod to reach the Service by name, as any workload would.
"$minictl" apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers:
  - {name: client, image: "busybox:latest", imagePullPolicy: IfNotPresent, command: ["sleep", "100000"]}
EOF
for _ in $(seq 1 120); do
    [ "$("$minictl" get pod client -o jsonpath='{.status.phase}' 2>/dev/null)" = Running ] && break
    sleep 0.5
done
printf '\n\033[1m# through the Service by DNS name, from a pod\033[0m\n'
for _ in 1 2 3 4 5 6; do
    "$minictl" exec client -- wget -q -O - http://web.default.svc.cluster.local/
done

nodeport="$("$minictl" get svc web -o jsonpath='{.spec.ports[0].nodePort}')"
printf '\n\033[1m# through the NodePort %s on every node (from the lab network)\033[0m\n' "$nodeport"
for i in $(seq 0 $((nodes - 1))); do
    ip="192.168.77.$((10 + i))"
    printf '%s:%s -> ' "$ip" "$nodeport"
    nsenter --net="/run/netns/mc-$name-br" busybox wget -q -O - "http://$ip:$nodeport/"
done

step "$minictl" cluster status --name "$name"
cat <<EOF

The cluster "$name" keeps running:
  export KUBECONFIG=$kubeconfig
  $minictl get pods -o wide          (or upstream kubectl: .tools/kubectl)
  $minictl rollout restart deployment/web
  $minictl cluster down --name $name
EOF
