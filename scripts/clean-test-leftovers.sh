#!/usr/bin/env bash
# clean-test-leftovers.sh: removes what a root test cluster killed with SIGKILL (so its Drop
# guard never ran) left behind: processes of /tmp/kubelet-* dirs, their sandboxes, mounts and
# cgroups, and network namespaces whose name starts with PREFIX (default: every k* lab of the
# kubelet tests). Usage: scripts/clean-test-leftovers.sh [PREFIX]
set -uo pipefail
PREFIX="${1:-k}"
MINIRUN="${MINIRUN:-${CARGO_TARGET_DIR:-/var/tmp/minicluster-target}/debug/minirun}"
for dir in /tmp/kubelet-"$PREFIX"*; do
  [ -d "$dir" ] || continue
  pkill -9 -f "$dir" 2>/dev/null
  for node in "$dir"/*/runtime; do
    [ -d "$node" ] || continue
    name="$(basename "$(dirname "$node")")"
    ids=$("$MINIRUN" --root "$node" --cgroup-root "minicluster-$name" pods --json 2>/dev/null |
      python3 -c 'import json,sys; print(" ".join(p["id"] for p in json.load(sys.stdin)))' 2>/dev/null)
    for id in $ids; do "$MINIRUN" --root "$node" --cgroup-root "minicluster-$name" sandbox rm "$id"; done
    find /sys/fs/cgroup -maxdepth 2 -name "minicluster-$name" -exec rmdir {} + 2>/dev/null
  done
  grep " $dir" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l
  rm -rf "$dir"
done
ip netns list | awk '{print $1}' | grep "^$PREFIX" | xargs -r -n1 ip netns del
