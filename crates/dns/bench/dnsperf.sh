#!/usr/bin/env bash
# dnsperf.sh: mini-dns against NSD, same records, same queries (docs/perf.md "## mini-dns").
#
#   cargo build --release -p dns --features bench-fixture --bin mini-dns-bench-fixture
#   crates/dns/bench/dnsperf.sh FIXTURE_BINARY [SERVICES] [SECONDS]
#
# Generates the zone and query file for SERVICES services (default 1000), checks that both
# servers give identical answers, then runs dnsperf for SECONDS (default 15) against each,
# the server pinned to CPU 0 and dnsperf to CPU 1 (taskset). Loopback only, ports 5400/5401.
# CLIENTS and OUTSTANDING set dnsperf -c and -q (default 4 and 200); query timeout 1 s.
# Needs Debian's dnsperf and nsd (installed here when missing; the test setup does not need them).
set -euo pipefail
for p in dnsperf nsd; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$p" >/dev/null
done
fixture="$1"; services="${2:-1000}"; seconds="${3:-15}"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

"$fixture" write "$work" "$services"
cat > "$work/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1@5401
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$work"
  pidfile: "$work/nsd.pid"
  database: ""
  xfrdfile: "$work/xfrd.state"
  xfrdir: "$work"
  zonelistfile: "$work/zone.list"
  logfile: "$work/nsd.log"
  do-ip6: no
  # NSD's response rate limiting (on by default in Debian's build) drops answers to a client that
  # asks more than 200 queries/s: off, or it measures its limiter instead of its speed.
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: cluster.local
  zonefile: "cluster.local.zone"
CONF
taskset -c 0 nsd -d -c "$work/nsd.conf" >"$work/nsd.out" 2>&1 & pids+=($!)
taskset -c 0 "$fixture" serve 127.0.0.1:5400 "$services" >"$work/mini-dns.out" 2>&1 & pids+=($!)
sleep 2
"$fixture" compare "$work/queries.txt" 127.0.0.1:5400 127.0.0.1:5401

for target in "mini-dns 5400" "nsd 5401"; do
  set -- $target
  echo "== $1"
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$2" -d "$work/queries.txt" -l "$seconds" -c "${CLIENTS:-4}" -q "${OUTSTANDING:-200}" -t 1 \
    | grep -E "Queries (sent|completed|lost)|Response codes|Queries per second|Average Latency|Latency StdDev"
done
