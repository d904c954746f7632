#!/usr/bin/env bash
# Build every synqc release artifact into dist/:
#   dist/synqc                         static-pie x86_64 binary
#   dist/synqc_<version>-1_amd64.deb   Debian package (cargo-deb)
#   dist/synqc-image.tar               FROM scratch image, docker-archive
#                                      (`podman load` / `docker load`)
#   dist/SHA256SUMS
#
# Usage: packaging/build.sh            (from anywhere; run as root, or with
#                                       the tools below already installed)
# Honours CARGO_TARGET_DIR. Needs no Docker engine: the image is built with
# buildah. Missing tools are installed (apt-get, cargo install).
#
# Environment knobs:
#   DIST_DIR         output directory (default: <repo>/dist)
#   IMAGE_NAME       image reference (default: localhost/synqc:<version>)
#   SOURCE_DATE_EPOCH  fixes the image timestamps (reproducible images)
set -euo pipefail

TRIPLE=x86_64-unknown-linux-gnu
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DIST_DIR=${DIST_DIR:-$ROOT/dist}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/$TRIPLE/release/synqc

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

# --- Tools -------------------------------------------------------------------
apt_install() {
    [ "$(id -u)" -eq 0 ] || die "missing $*; install them (apt-get install $*) or run as root"
    log "installing $*"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "$@" >/dev/null \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "$@" >/dev/null; } \
        || die "apt-get install $* failed"
}

command -v cargo >/dev/null || die "cargo not found (install Rust first)"
command -v file >/dev/null || apt_install file
command -v buildah >/dev/null || apt_install buildah
if ! cargo deb --version >/dev/null 2>&1; then
    log "installing cargo-deb"
    cargo install cargo-deb --locked >/dev/null 2>&1 || die "cargo install cargo-deb failed"
fi
# The host toolchain is already x86_64-unknown-linux-gnu; naming the target
# explicitly is what makes RUSTFLAGS skip build scripts and proc macros
# (they must stay dynamic), so make sure it is installed.
if command -v rustup >/dev/null; then
    rustup target list --installed 2>/dev/null | grep -qx "$TRIPLE" \
        || rustup target add "$TRIPLE" >/dev/null
fi

VERSION=$(cargo pkgid 2>/dev/null | sed 's/.*[#@]//')
[ -n "$VERSION" ] || die "cannot read the package version"
IMAGE_NAME=${IMAGE_NAME:-localhost/synqc:$VERSION}

# --- 1. Static binary ----------------------------------------------------------
# glibc with crt-static gives a static-pie executable (no musl toolchain on
# the build hosts). The release profile in Cargo.toml sets LTO,
# codegen-units=1, strip and panic=abort.
log "building the static binary ($TRIPLE, release)"
RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static" \
    cargo build --release --locked --target "$TRIPLE"
[ -x "$BIN" ] || die "no binary at $BIN"

kind=$(file -b "$BIN")
case "$kind" in
    *"static-pie linked"*|*"statically linked"*) ;;
    *) die "binary is not static: $kind" ;;
esac

mkdir -p "$DIST_DIR"
install -m 0755 "$BIN" "$DIST_DIR/synqc"

# --- 2. Debian package -----------------------------------------------------------
# --no-build: package exactly the binary built above; `--target` makes
# cargo-deb read it from target/$TRIPLE/release (CARGO_TARGET_DIR honoured).
# --no-strip: the release profile already stripped it.
for doc in README.md CHANGELOG.md; do
    [ -f "$doc" ] || die "$doc is missing (the .deb ships it in /usr/share/doc/synqc)"
done
# A release bump must add a packaging/debian/changelog entry too.
deb_changelog_version=$(sed -n '1s/^synqc (\([^)-]*\)-[^)]*).*/\1/p' packaging/debian/changelog)
[ "$deb_changelog_version" = "$VERSION" ] \
    || die "packaging/debian/changelog starts at '$deb_changelog_version', Cargo.toml says $VERSION: add an entry"
log "building the .deb"
rm -f "$DIST_DIR"/synqc_*.deb
if ! deb_log=$(cargo deb --no-build --no-strip --target "$TRIPLE" --output "$DIST_DIR" 2>&1); then
    printf '%s\n' "$deb_log" >&2
    die "cargo deb failed"
fi
deb=$(ls -t "$DIST_DIR"/synqc_*.deb 2>/dev/null | head -n 1)
[ -f "$deb" ] || { printf '%s\n' "$deb_log" >&2; die "cargo deb did not produce a package"; }

# --- 3. Container image ------------------------------------------------------------
# The build context holds only what the Containerfile copies (see its
# header), so the repository and target/ are never sent to the builder.
log "building the container image $IMAGE_NAME"
ctx=$(mktemp -d "${TMPDIR:-/tmp}/synqc-image-ctx.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
install -m 0755 "$BIN" "$ctx/synqc"
mkdir -p "$ctx/rootfs/var/lib" "$ctx/state"

created=$(date -u ${SOURCE_DATE_EPOCH:+-d "@$SOURCE_DATE_EPOCH"} +%Y-%m-%dT%H:%M:%SZ)
ts_args=()
[ -n "${SOURCE_DATE_EPOCH:-}" ] && ts_args=(--timestamp "$SOURCE_DATE_EPOCH")
# Docker format: the OCI image format has no HEALTHCHECK. The runtime and
# ulimit flags only matter for RUN steps (there are none) but are what this
# kind of host needs if one is ever added.
runtime_args=()
command -v runc >/dev/null && runtime_args=(--runtime runc)
old_image_id=$(buildah images -q "$IMAGE_NAME" 2>/dev/null | head -n 1)
buildah bud --quiet --format docker --layers=false \
    "${runtime_args[@]}" --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 \
    "${ts_args[@]}" \
    --build-arg VERSION="$VERSION" --build-arg CREATED="$created" \
    -f packaging/container/Containerfile -t "$IMAGE_NAME" "$ctx" >/dev/null

# The previous build under the same tag is now untagged: drop it unless a
# container still uses it.
new_image_id=$(buildah images -q "$IMAGE_NAME" 2>/dev/null | head -n 1)
if [ -n "$old_image_id" ] && [ "$old_image_id" != "$new_image_id" ]; then
    buildah rmi "$old_image_id" >/dev/null 2>&1 || true
fi

image_tar=$DIST_DIR/synqc-image.tar
rm -f "$image_tar"
buildah push --quiet "$IMAGE_NAME" "docker-archive:$image_tar:$IMAGE_NAME" >/dev/null

# --- Summary ---------------------------------------------------------------------------
(cd "$DIST_DIR" && sha256sum synqc "$(basename "$deb")" synqc-image.tar > SHA256SUMS)

echo
echo "synqc $VERSION: built into $DIST_DIR"
printf '%-44s %12s  %s\n' "artifact" "bytes" "sha256"
for f in "$DIST_DIR/synqc" "$deb" "$image_tar"; do
    printf '%-44s %12s  %s\n' "$f" "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)"
done
echo
echo "binary: $(file -b "$DIST_DIR/synqc" | cut -d, -f1-4)"
echo "image:  $IMAGE_NAME (load with: podman load -i $image_tar)"
