#!/usr/bin/env bash
# perf.sh: measures `mini-cluster up` of a 3-node cluster to all nodes Ready + DNS answering, and
# the resident memory of every component (and of the pods' processes) after 20 s idle, then again
# with PODS (default 100) demo-web pods running; then `down`. Root. Uses a temp state dir and
# kubeconfig, never ~/.kube/config.
# Usage: crates/localcluster/scripts/perf.sh BIN_DIR IMAGES_DIR [NODES] [PODS]
set -euo pipefail
BIN="$1"; IMAGES="$2"; NODES="${3:-3}"; PODS="${4:-100}"
WORK="$(mktemp -d /tmp/localcluster-perf.XXXXXX)"
export MINICLUSTER_STATE_DIR="$WORK/state"
NAME="perf$$"
trap '"$BIN/mini-cluster" down --name "$NAME" >/dev/null; rm -rf "$WORK"' EXIT
start=$(date +%s.%N)
"$BIN/mini-cluster" up --name "$NAME" --nodes "$NODES" --bin-dir "$BIN" --images "$IMAGES" \
  --kubeconfig "$WORK/kubeconfig" | tail -1
end=$(date +%s.%N)
echo "up to all Ready + DNS: $(echo "$end - $start" | bc) s (wall clock of the command)"
measure() {
  local total=0 pods=0 rss name pid dir
  printf '%-28s %10s\n' COMPONENT RSS_KiB
  while read -r name pid; do
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    total=$((total + rss))
    printf '%-28s %10s\n' "$name" "$rss"
  done < <(python3 -c "import json,sys; [print(c['name'], c['pid']) for c in json.load(open(sys.argv[1]))['components']]" "$MINICLUSTER_STATE_DIR/$NAME/state.json")
  for dir in /proc/[0-9]*; do
    pid="${dir#/proc/}"
    grep -q "minicluster-$NAME-n" "$dir/cgroup" 2>/dev/null || \
      { tr '\0' ' ' < "$dir/cmdline" | grep -q "^$BIN/minirun --root $MINICLUSTER_STATE_DIR"; } 2>/dev/null || continue
    rss=$(awk '/VmRSS/ {print $2}' "$dir/status" 2>/dev/null || echo 0)
    pods=$((pods + ${rss:-0}))
  done
  printf '%-28s %10s\n' "components total" "$total"
  printf '%-28s %10s\n' "pods (monitors+pause+apps)" "$pods"
}
sleep 20
echo "== idle (DNS add-on only)"
measure
ctl=("$BIN/minictl" --kubeconfig "$WORK/kubeconfig" --context "minicluster-$NAME")
"${ctl[@]}" deploy load --image demo-web:v1 --replicas "$PODS" --port 8080 >/dev/null
start=$(date +%s.%N)
"${ctl[@]}" rollout status deployment/load --timeout 600s >/dev/null
end=$(date +%s.%N)
echo "$PODS pods available in $(echo "$end - $start" | bc) s"
sleep 20
echo "== with $PODS demo-web pods running"
measure
