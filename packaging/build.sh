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
# buildah, into whichever container store buildah uses (CONTAINERS_STORAGE_CONF
# honoured); the store may be empty. Missing tools are installed (apt-get,
# cargo install). Any failure ends the script with a line naming the step.
#
# Environment knobs:
#   DIST_DIR         output directory (default: <repo>/dist)
#   IMAGE_NAME       image reference (default: localhost/synqc:<version>)
#   SOURCE_DATE_EPOCH  fixes the image timestamps (reproducible images)
set -eEuo pipefail

TRIPLE=x86_64-unknown-linux-gnu
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DIST_DIR=${DIST_DIR:-$ROOT/dist}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/$TRIPLE/release/synqc

# --- Failing loudly --------------------------------------------------------------
# `set -e` alone ends the script without a word when a command that prints
# nothing fails (a lookup of an image that is not there yet did exactly
# that). So every part of the script is a named step, the ERR trap keeps the
# command that failed, and the EXIT trap names both on any non-zero exit.
STEP=start
FAILED_CMD=
CTX=
step() { STEP=$1; printf '==> %s\n' "$1" >&2; }
die() { printf 'packaging/build.sh: %s\n' "$*" >&2; exit 1; }
trap 'FAILED_CMD=$BASH_COMMAND' ERR
on_exit() {
    local rc=$?
    [ -z "$CTX" ] || rm -rf "$CTX"
    if [ "$rc" -ne 0 ]; then
        printf "packaging/build.sh: step '%s' failed (exit %d)%s\n" \
            "$STEP" "$rc" "${FAILED_CMD:+: $FAILED_CMD}" >&2
    fi
}
trap on_exit EXIT

# quiet CMD...: run CMD with its chatter held back; if it fails, show the
# chatter and end the script (exit, not return, so the message names CMD
# rather than this function).
quiet() {
    local out rc=0
    out=$("$@" 2>&1) || rc=$?
    if [ "$rc" -ne 0 ]; then
        printf '%s\n' "$out" >&2
        FAILED_CMD="$*"
        exit "$rc"
    fi
}

# --- Tools -------------------------------------------------------------------
step "tools"
apt_install() {
    [ "$(id -u)" -eq 0 ] || die "missing $*; install them (apt-get install $*) or run as root"
    printf '==> installing %s\n' "$*" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "$@" >/dev/null \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "$@" >/dev/null; } \
        || die "apt-get install $* failed"
}

command -v cargo >/dev/null || die "cargo not found (install Rust first)"
command -v file >/dev/null || apt_install file
command -v buildah >/dev/null || apt_install buildah
if ! cargo deb --version >/dev/null 2>&1; then
    printf '==> installing cargo-deb\n' >&2
    quiet cargo install cargo-deb --locked
fi
# The host toolchain is already x86_64-unknown-linux-gnu; naming the target
# explicitly is what makes RUSTFLAGS skip build scripts and proc macros
# (they must stay dynamic), so make sure it is installed.
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$TRIPLE"; then
    quiet rustup target add "$TRIPLE"
fi

step "package version"
VERSION=$(cargo pkgid | sed 's/.*[#@]//')
[ -n "$VERSION" ] || die "cannot read the package version from 'cargo pkgid'"
IMAGE_NAME=${IMAGE_NAME:-localhost/synqc:$VERSION}

# --- 1. Static binary ----------------------------------------------------------
# glibc with crt-static gives a static-pie executable (no musl toolchain on
# the build hosts). The release profile in Cargo.toml sets LTO,
# codegen-units=1, strip and panic=abort.
step "static binary ($TRIPLE, release)"
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
step "debian package"
for doc in README.md CHANGELOG.md; do
    [ -f "$doc" ] || die "$doc is missing (the .deb ships it in /usr/share/doc/synqc)"
done
# A release bump must add a packaging/debian/changelog entry too.
deb_changelog_version=$(sed -n '1s/^synqc (\([^)-]*\)-[^)]*).*/\1/p' packaging/debian/changelog)
[ "$deb_changelog_version" = "$VERSION" ] \
    || die "packaging/debian/changelog starts at '$deb_changelog_version', Cargo.toml says $VERSION: add an entry"
# Packages of earlier versions would otherwise stay beside the new one.
rm -f "$DIST_DIR"/synqc_*.deb
quiet cargo deb --no-build --no-strip --target "$TRIPLE" --output "$DIST_DIR"
debs=("$DIST_DIR"/synqc_*.deb)
[ -f "${debs[0]}" ] || die "cargo deb reported success but left no synqc_*.deb in $DIST_DIR"
deb=${debs[0]}

# --- 3. Container image ------------------------------------------------------------
# The build context holds only what the Containerfile copies (see its
# header), so the repository and target/ are never sent to the builder.
step "container image $IMAGE_NAME"
CTX=$(mktemp -d "${TMPDIR:-/tmp}/synqc-image-ctx.XXXXXX")
install -m 0755 "$BIN" "$CTX/synqc"
mkdir -p "$CTX/rootfs/var/lib" "$CTX/state"

created=$(date -u ${SOURCE_DATE_EPOCH:+-d "@$SOURCE_DATE_EPOCH"} +%Y-%m-%dT%H:%M:%SZ)
ts_args=()
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then ts_args=(--timestamp "$SOURCE_DATE_EPOCH"); fi
# Docker format: the OCI image format has no HEALTHCHECK. The runtime and
# ulimit flags only matter for RUN steps (there are none) but are what this
# kind of host needs if one is ever added.
runtime_args=()
if command -v runc >/dev/null; then runtime_args=(--runtime runc); fi
# The image this tag named before, if any: a rebuild leaves it untagged.
# (`buildah images NAME` fails when NAME does not exist, as on every first
# build; a reference filter just lists nothing.)
old_image_id=$(buildah images -q --no-trunc --filter "reference=$IMAGE_NAME")
quiet buildah bud --quiet --format docker --layers=false \
    "${runtime_args[@]}" --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 \
    "${ts_args[@]}" \
    --build-arg VERSION="$VERSION" --build-arg CREATED="$created" \
    -f packaging/container/Containerfile -t "$IMAGE_NAME" "$CTX"
new_image_id=$(buildah images -q --no-trunc --filter "reference=$IMAGE_NAME")
[ -n "$new_image_id" ] || die "buildah bud reported success but no image is tagged $IMAGE_NAME"
# Drop the untagged previous build unless a container still uses it (then
# rmi refuses, and keeping it is right).
if [ -n "$old_image_id" ] && [ "$old_image_id" != "$new_image_id" ]; then
    buildah rmi "$old_image_id" >/dev/null 2>&1 || true
fi

step "image archive"
image_tar=$DIST_DIR/synqc-image.tar
rm -f "$image_tar"
quiet buildah push --quiet "$IMAGE_NAME" "docker-archive:$image_tar:$IMAGE_NAME"

# --- Summary ---------------------------------------------------------------------------
step "checksums"
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
