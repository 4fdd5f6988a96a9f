#!/usr/bin/env bash
# build-images.sh: builds the node images (pause:latest, busybox:latest, demo-web:v1, demo-web:v2,
# mini-dns:latest)
# as reproducible OCI image-layout tarballs `<name>_<tag>.tar` (same inputs → same digests).
#
# Usage: scripts/build-images.sh [--out DIR] [--no-build]
#   --out DIR    output directory (default: target/images)
#   --no-build   reuse already built static binaries (PAUSE_BIN / DEMO_WEB_BIN / MINI_DNS_BIN or the
#                default path)
# Inputs: this repo's crates/pause, crates/demo-web and crates/dns (built static with crt-static),
# and Debian's busybox-static (/bin/busybox; installed with apt-get if missing). Recipes live in images/.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/target/images"
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --out=*) OUT="${1#--out=}"; shift ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "build-images: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

TARGET=x86_64-unknown-linux-gnu
TDIR="${CARGO_TARGET_DIR:-$ROOT/target}"
if [ "$BUILD" = 1 ]; then
  (cd "$ROOT" && RUSTFLAGS="-C target-feature=+crt-static" CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=true cargo build --release --target "$TARGET" -p pause -p demo-web -p dns)
fi
PAUSE_BIN="${PAUSE_BIN:-$TDIR/$TARGET/release/pause}"
DEMO_WEB_BIN="${DEMO_WEB_BIN:-$TDIR/$TARGET/release/demo-web}"
MINI_DNS_BIN="${MINI_DNS_BIN:-$TDIR/$TARGET/release/mini-dns}"

BUSYBOX=/bin/busybox
if [ ! -x "$BUSYBOX" ] || ldd "$BUSYBOX" >/dev/null 2>&1; then
  if [ -x /usr/bin/busybox ] && ! ldd /usr/bin/busybox >/dev/null 2>&1; then
    BUSYBOX=/usr/bin/busybox
  else
    apt-get install -y busybox-static >/dev/null
    BUSYBOX=/bin/busybox
  fi
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# Reproducible tar of a directory's contents: fixed order, mtime, owner, format.
rtar() { # rtar SRC_DIR OUT_TAR
  tar --create --file "$2" --directory "$1" --sort=name --mtime=@0 --owner=0 --group=0 \
    --numeric-owner --format=gnu --no-acls --no-xattrs --no-selinux .
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

# build_image NAME TAG ROOTFS_DIR CONFIG_JSON_FRAGMENT
# CONFIG_JSON_FRAGMENT is the image config's "config" object.
build_image() {
  local name="$1" tag="$2" rootfs="$3" cfg="$4"
  local lay="$WORK/layout-$name-$tag"
  rm -rf "$lay"; mkdir -p "$lay/blobs/sha256"
  # normalise permissions (umask independent)
  find "$rootfs" -type d -exec chmod 0755 {} +
  [ -d "$rootfs/tmp" ] && chmod 1777 "$rootfs/tmp"
  rtar "$rootfs" "$WORK/layer.tar"
  local diffid; diffid="$(sha "$WORK/layer.tar")"
  gzip -n -9 -c "$WORK/layer.tar" > "$WORK/layer.tar.gz"
  local ldig lsize; ldig="$(sha "$WORK/layer.tar.gz")"; lsize="$(size "$WORK/layer.tar.gz")"
  mv "$WORK/layer.tar.gz" "$lay/blobs/sha256/$ldig"
  printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"scripts/build-images.sh %s:%s"}]}' \
    "$cfg" "$diffid" "$name" "$tag" > "$WORK/config.json"
  local cdig csize; cdig="$(sha "$WORK/config.json")"; csize="$(size "$WORK/config.json")"
  mv "$WORK/config.json" "$lay/blobs/sha256/$cdig"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$cdig" "$csize" "$ldig" "$lsize" > "$WORK/manifest.json"
  local mdig msize; mdig="$(sha "$WORK/manifest.json")"; msize="$(size "$WORK/manifest.json")"
  mv "$WORK/manifest.json" "$lay/blobs/sha256/$mdig"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"docker.io/library/%s:%s","org.opencontainers.image.ref.name":"%s:%s"}}]}' \
    "$mdig" "$msize" "$name" "$tag" "$name" "$tag" > "$lay/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' > "$lay/oci-layout"
  find "$lay" -type f -exec chmod 0644 {} +
  rtar "$lay" "$OUT/${name}_${tag}.tar"
  echo "$name:$tag sha256:$mdig $OUT/${name}_${tag}.tar"
}

base_etc() { # base_etc ROOTFS: minimal /etc, /tmp, /proc, /sys, /dev mount points
  mkdir -p "$1/etc" "$1/tmp" "$1/proc" "$1/sys" "$1/dev" "$1/root"
  cp "$ROOT/images/etc/passwd" "$ROOT/images/etc/group" "$1/etc/"
  chmod 0644 "$1/etc/passwd" "$1/etc/group"
}

# pause:latest
R="$WORK/rootfs-pause"; mkdir -p "$R"
install -m 0755 "$PAUSE_BIN" "$R/pause"
base_etc "$R"
build_image pause latest "$R" "$(cat "$ROOT/images/pause.config.json")"

# busybox:latest
R="$WORK/rootfs-busybox"; mkdir -p "$R/bin"
install -m 0755 "$BUSYBOX" "$R/bin/busybox"
for applet in $("$BUSYBOX" --list | sort); do
  [ "$applet" = busybox ] || ln -sf busybox "$R/bin/$applet"
done
mkdir -p "$R/usr" "$R/var/www" && ln -s ../bin "$R/usr/bin" && ln -s ../bin "$R/sbin"
# openssl and its libraries: Debian's busybox wget runs `openssl s_client` for https (as on any
# Debian system); its built-in TLS sends no signature_algorithms extension, which rustls servers
# (the apiserver) refuse, so in-pod `wget https://kubernetes.default.svc` needs it.
if OPENSSL=$(command -v openssl); then
  install -m 0755 "$OPENSSL" "$R/bin/openssl"
  for lib in $(ldd "$OPENSSL" | grep -o '/[^ ]*'); do
    mkdir -p "$R$(dirname "$lib")"
    install -m 0755 "$lib" "$R$lib"
  done
fi
base_etc "$R"
build_image busybox latest "$R" "$(cat "$ROOT/images/busybox.config.json")"

# demo-web:v1 and demo-web:v2: the same binary, VERSION differs in the image config
for v in v1 v2; do
  R="$WORK/rootfs-demo-web-$v"; mkdir -p "$R"
  install -m 0755 "$DEMO_WEB_BIN" "$R/demo-web"
  base_etc "$R"
  build_image demo-web "$v" "$R" "$(sed "s/@VERSION@/$v/" "$ROOT/images/demo-web.config.json")"
done

# mini-dns:latest: the cluster DNS add-on (deploy/dns.yaml)
R="$WORK/rootfs-mini-dns"; mkdir -p "$R"
install -m 0755 "$MINI_DNS_BIN" "$R/mini-dns"
base_etc "$R"
build_image mini-dns latest "$R" "$(cat "$ROOT/images/mini-dns.config.json")"
