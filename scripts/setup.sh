#!/usr/bin/env bash
# Installs everything mini-cluster needs on a fresh Debian machine (run as root): system
# packages, the Python client used by the compatibility tests, and upstream kubectl v1.33.
# Idempotent: skips what is already there.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# libprotobuf-dev carries the well-known .proto files (descriptor.proto) etcd-client's build needs
# openssl goes into the busybox test image: Debian's busybox wget hands https to `openssl
# s_client` (its built-in TLS sends no signature_algorithms, which rustls servers refuse)
packages=(etcd-server iptables iproute2 busybox-static protobuf-compiler libprotobuf-dev runc crun docker-registry conntrack openssl curl)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The fidelity suites also make a virtualenv with the newest client (testkit::python).
if ! python3 -c 'import ensurepip' 2>/dev/null; then
    echo "setup: installing python3-venv" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi

if ! python3 -c 'import kubernetes' 2>/dev/null; then
    echo "setup: installing the Python client (PyPI kubernetes)" >&2
    python3 -m pip install --quiet --disable-pip-version-check 'kubernetes>=31,<35'
fi

"$repo_root/scripts/fetch-kubectl.sh" >/dev/null
echo "setup: done" >&2
