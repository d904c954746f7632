#!/usr/bin/env bash
# CI check of the release artifacts (issue 5): static binary, .deb with the
# hardened systemd unit, FROM scratch container image.
#
#   tests/packaging.sh              build with packaging/build.sh, then check
#   SKIP_BUILD=1 tests/packaging.sh reuse dist/ as it is
#
# Runs as root (dpkg, podman); installs what it needs (curl, lintian, podman,
# buildah, python3 ...). Touches only loopback ports and the synqc package;
# every container, network, volume and process it starts is removed on exit.
# No image is pulled: the scraper container runs the host's own curl
# (`podman run --rootfs /:O`), which works air-gapped.
#
# The build and the image checks each use a private, initially EMPTY
# container store under a temporary directory (CONTAINERS_STORAGE_CONF,
# which buildah and podman both honour): the image provably did not exist
# before the build, an image left in this machine's store by an earlier run
# changes nothing, and nothing is left in that store afterwards.
#
# Last, where systemd can boot inside a container (podman --systemd=always
# on an overlay of this host's root), the .deb is installed there and the
# hardened unit is started and stopped by a real systemd (SYSTEMD_BOOT_TEST=0
# skips that part).
#
# Prints one line per check and, last, exactly
#   packaging: N passed, M failed
# Exit status is non-zero when any check failed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DIST=${DIST_DIR:-$ROOT/dist}
UNIT_SRC=$ROOT/systemd/synqc.service
RUN_ID=$$                     # suffix for every name this run creates
NET=synqc-test-net-$RUN_ID
VOL=synqc-test-vol-$RUN_ID
CTR=synqc-test                # the name the scraper uses (DNS on $NET)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/synqc-packaging.XXXXXX")

PASSED=0
FAILED=0
PIDS=()
WE_INSTALLED_DEB=0
CREATED_PRIVATE=0

pass() { PASSED=$((PASSED + 1)); printf 'ok   %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL %s\n' "$*"; }
# Indented excerpt of a log, to explain a failure.
show() { [ -s "$1" ] && tail -n "${2:-15}" "$1" | sed 's/^/     | /'; return 0; }
note() { printf '     %s\n' "$*"; }

# check NAME CMD...: run CMD (output to a log), pass or fail on its status.
check() {
    local name=$1; shift
    local log=$TMP/check.log
    if "$@" >"$log" 2>&1; then pass "$name"; else fail "$name"; show "$log"; fi
}

summary() {
    echo "packaging: $PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}

# --- Cleanup: only what this script started ----------------------------------
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    done
    if command -v podman >/dev/null; then
        timeout 60 podman rm -f -t 0 "$CTR" >/dev/null 2>&1
        timeout 60 podman rm -f -t 0 "synqc-peer-$RUN_ID" >/dev/null 2>&1
        timeout 60 podman rm -f -t 0 "synqc-systemd-$RUN_ID" >/dev/null 2>&1
        timeout 60 podman volume rm -f "$VOL" >/dev/null 2>&1
        timeout 60 podman network rm -f "$NET" >/dev/null 2>&1
    fi
    if [ "$WE_INSTALLED_DEB" -eq 1 ] && dpkg-query -W synqc >/dev/null 2>&1; then
        dpkg -P synqc >/dev/null 2>&1
    fi
    [ "$CREATED_PRIVATE" -eq 1 ] && rmdir /var/lib/private 2>/dev/null
    # A container podman failed to remove may still have mounts in the
    # private store (its /dev/shm, the `--rootfs /:O` overlay of the host
    # root): unmount them rather than delete through them.
    findmnt -rn -o TARGET | grep -F "$TMP/" | sort -r | while read -r mnt; do
        umount -l "$mnt" 2>/dev/null
    done
    rm -rf --one-file-system "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Tools ----------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || { echo "tests/packaging.sh must run as root (dpkg, podman)" >&2; exit 2; }
need=()
for pair in curl:curl file:file lintian:lintian podman:podman buildah:buildah runc:runc \
            python3:python3 setpriv:util-linux systemd-analyze:systemd; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if [ "${#need[@]}" -gt 0 ]; then
    echo "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
        || { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1; } \
        || { echo "cannot install ${need[*]}" >&2; exit 2; }
fi

# This machine's podman needs runc and explicit ulimits; a containers.conf
# applies them to every podman command (run, start, healthcheck run).
if [ -z "${CONTAINERS_CONF:-}" ]; then
    cat >"$TMP/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
EOF
    export CONTAINERS_CONF=$TMP/containers.conf
fi

# use_store NAME: point buildah and podman at a new, empty store of their
# own. vfs needs no mounts of its own, so deleting $TMP removes it whole.
use_store() {
    local dir=$TMP/store-$1
    mkdir -p "$dir"
    cat >"$dir.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$dir/graph"
runroot = "$dir/run"
EOF
    export CONTAINERS_STORAGE_CONF=$dir.conf
    STORE=$dir
}

# store_holds N: buildah and podman both use $STORE and it holds N images
# (and no container); lists what it holds otherwise.
store_holds() {
    local want=$1 root images bimages
    root=$(timeout 60 podman info --format '{{.Store.GraphRoot}}') || return 1
    [ "$root" = "$STORE/graph" ] || { echo "podman uses the store $root, not $STORE/graph"; return 1; }
    root=$(timeout 60 buildah info --format '{{.store.GraphRoot}}') || return 1
    [ "$root" = "$STORE/graph" ] || { echo "buildah uses the store $root, not $STORE/graph"; return 1; }
    images=$(timeout 60 podman images -a --format '{{.ID}} {{.Repository}}:{{.Tag}}') || return 1
    bimages=$(timeout 60 buildah images -a -q) || return 1
    printf 'podman images:\n%s\nbuildah images:\n%s\n' "$images" "$bimages"
    [ "$(printf '%s' "$images" | grep -c .)" -eq "$want" ] \
        && [ "$(printf '%s' "$bimages" | grep -c .)" -eq "$want" ] \
        && [ -z "$(timeout 60 podman ps -aq)" ]
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_http URL [SECONDS]: until URL answers 200 (bounded).
wait_http() {
    local url=$1 limit=${2:-30} i
    for ((i = 0; i < limit * 4; i++)); do
        [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url")" = 200 ] && return 0
        sleep 0.25
    done
    return 1
}

# stop_pid PID [SECONDS]: SIGTERM, wait (bounded), succeed only on exit 0.
stop_pid() {
    local pid=$1 limit=${2:-20} i status
    kill -TERM "$pid" 2>/dev/null || return 1
    for ((i = 0; i < limit * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "still running ${limit}s after SIGTERM"; kill -KILL "$pid"; wait "$pid" 2>/dev/null
        return 1
    fi
    wait "$pid"; status=$?
    echo "exit status $status after SIGTERM"
    [ "$status" -eq 0 ]
}

# --- 1. Build -----------------------------------------------------------------------------
# Bounded: the release build (LTO) takes minutes on a small machine, a
# rebuild over it seconds.
if [ "${SKIP_BUILD:-0}" = 1 ]; then
    note "SKIP_BUILD=1: reusing $DIST"
else
    use_store build
    check "build store is empty and used by buildah and podman ($STORE)" store_holds 0
    if timeout 1800 packaging/build.sh >"$TMP/build.log" 2>&1; then
        pass "build: packaging/build.sh made dist/ starting from the empty store"
        sed -n '/^artifact/,$p' "$TMP/build.log" | sed 's/^/     /'
    else
        fail "build: packaging/build.sh (from an empty container store)"; show "$TMP/build.log" 30
        summary; exit 1
    fi
    built=$(sed -n 's/^image: *\([^ ]*\) .*/\1/p' "$TMP/build.log")
    check "build store now holds the one image $built" store_holds 1
    # The path every machine that built once takes: the tag exists already.
    # Without SOURCE_DATE_EPOCH the new image differs from the first one (its
    # creation time), so there is an old image to drop.
    first_id=$(timeout 60 podman images -q --no-trunc)
    if timeout 600 env -u SOURCE_DATE_EPOCH packaging/build.sh >"$TMP/rebuild.log" 2>&1; then
        pass "rebuild: packaging/build.sh over the image of the first build"
    else
        fail "rebuild: packaging/build.sh over the image of the first build"; show "$TMP/rebuild.log" 30
        summary; exit 1
    fi
    replaced_and_dropped() {
        store_holds 1 || return 1
        [ "$(timeout 60 podman images -q --no-trunc)" != "$first_id" ] \
            || { echo "the rebuild kept image $first_id: nothing was replaced"; return 1; }
    }
    check "rebuild replaced the image and dropped the old one: the store holds one image" replaced_and_dropped
    # A tool failing without a word (as buildah did on a missing image) must
    # still end the build with a line naming the step and the exit status.
    mkdir -p "$TMP/mute-bin"
    printf '#!/bin/sh\nexit 125\n' >"$TMP/mute-bin/buildah"
    chmod +x "$TMP/mute-bin/buildah"
    check "build.sh names the failed step when a tool fails silently" bash -c "
        PATH='$TMP/mute-bin':\$PATH DIST_DIR='$TMP/dist-mute' timeout 600 packaging/build.sh >'$TMP/mute.log' 2>&1
        rc=\$?; tail -n 1 '$TMP/mute.log'
        [ \$rc -eq 125 ] && tail -n 1 '$TMP/mute.log' | grep -q \"^packaging/build.sh: step 'container image .*' failed (exit 125): \""
fi

BIN=$DIST/synqc
DEB=$(ls -t "$DIST"/synqc_*_amd64.deb 2>/dev/null | head -n 1)
IMAGE_TAR=$DIST/synqc-image.tar
missing=0
for f in "$BIN" "${DEB:-$DIST/synqc_*_amd64.deb}" "$IMAGE_TAR"; do
    [ -f "$f" ] || { fail "artifact present: $f"; missing=1; }
done
[ "$missing" -eq 0 ] || { summary; exit 1; }
pass "artifacts present: $(basename "$BIN"), $(basename "$DEB"), $(basename "$IMAGE_TAR")"

# --- 2. Static binary ---------------------------------------------------------------------
kind=$(file -b "$BIN")
case "$kind" in
    *"static-pie linked"*|*"statically linked"*) pass "file: $(echo "$kind" | cut -d, -f1,2,4 | sed 's/  */ /g')" ;;
    *) fail "file: not static: $kind" ;;
esac
ldd_out=$(ldd "$BIN" 2>&1)
case "$ldd_out" in
    *"statically linked"*|*"not a dynamic executable"*) pass "ldd: $(echo "$ldd_out" | tr -s ' \t' ' ' | sed 's/^ //')" ;;
    *) fail "ldd: has dynamic dependencies"; note "$ldd_out" ;;
esac
check "binary runs: synqc version ($("$BIN" version 2>/dev/null | head -n 1))" "$BIN" version

port=$(free_port)
mkdir -p "$TMP/bin-data"
"$BIN" serve --listen "127.0.0.1:$port" --data-dir "$TMP/bin-data" >"$TMP/bin-serve.log" 2>&1 &
pid=$!; PIDS+=("$pid")
if wait_http "http://127.0.0.1:$port/health" 30; then
    pass "binary serves /health on 127.0.0.1:$port"
else
    fail "binary serves /health on 127.0.0.1:$port"; show "$TMP/bin-serve.log"
fi
check "synqc healthcheck --url http://127.0.0.1:$port exits 0" \
    "$BIN" healthcheck --url "http://127.0.0.1:$port"
check "synqc healthcheck with SYNQC_LISTEN=0.0.0.0:$port exits 0" \
    env SYNQC_LISTEN="0.0.0.0:$port" "$BIN" healthcheck
dead=$(free_port)
check "synqc healthcheck against a closed port fails within 10 s" \
    bash -c "timeout 10 '$BIN' healthcheck --url http://127.0.0.1:$dead; rc=\$?; echo exit \$rc; [ \$rc -ne 0 ] && [ \$rc -ne 124 ]"
check "binary exits 0 on SIGTERM (drain, flush)" stop_pid "$pid" 20

# --- 3. Config file -----------------------------------------------------------------------
# Every key the conffile documents, uncommented at its documented value,
# must be accepted: the file lists real keys and correct defaults.
python3 - "$ROOT/packaging/synqc.toml" >"$TMP/all-keys.toml" <<'PY'
import re, sys
out, seen_noise = [], False
for line in open(sys.argv[1]):
    m = re.match(r'^#([a-z0-9_]+ = .*|\[noise\.[a-z_]+\])\s*$', line)
    if m:
        if m.group(1).startswith('[noise.'):
            if seen_noise:
                break          # the second sim_local table is an example
            seen_noise = True
        out.append(re.sub(r'\s+#.*$', '', m.group(1)))
    elif line.strip() and not line.startswith('#'):
        out.append(line.rstrip('\n'))
print('\n'.join(out))
PY
nkeys=$(grep -c '^[a-z]' "$TMP/all-keys.toml")
# Paths must exist on this machine: a temporary store and keys file.
echo "test-key-0123456789" >"$TMP/api_keys"
sed -i -e 's#^data_dir = .*#data_dir = "'"$TMP"'/all-keys-data"#' \
       -e 's#^api_keys_file = .*#api_keys_file = "'"$TMP"'/api_keys"#' "$TMP/all-keys.toml"
check "config check accepts every documented key uncommented ($nkeys keys)" \
    "$BIN" config check --config "$TMP/all-keys.toml"
printf 'data_dir = "%s"\nno_such_key = 1\n' "$TMP/x" >"$TMP/bad.toml"
check "config check refuses an unknown key" bash -c "! '$BIN' config check --config '$TMP/bad.toml'"

# --- 4. .deb: install without systemd ----------------------------------------------------
# Any state but absent (installed, or config files left by a removal)
# would mix an earlier install into this one. dpkg may still know a purged
# package as "not-installed", which is absent.
deb_state=$(dpkg-query -W -f='${db:Status-Status}' synqc 2>/dev/null)
case "$deb_state" in
    ""|not-installed) ;;
    *) fail "synqc is $deb_state on this machine; purge it first (dpkg -P synqc)"
       summary; exit 1 ;;
esac
WE_INSTALLED_DEB=1
if [ -d /run/systemd/system ]; then note "systemd is running: postinst will start the unit"; fi
check "dpkg -i $(basename "$DEB") (systemd not PID 1)" dpkg -i "$DEB"
check "installed files: binary, unit, conffile, man page, Prometheus, Grafana, the Aer executor, docs" bash -c '
    set -e
    for f in /usr/bin/synqc /usr/lib/systemd/system/synqc.service /etc/synqc/synqc.toml \
             /usr/share/man/man1/synqc.1.gz \
             /usr/share/doc/synqc/README.md /usr/share/doc/synqc/CHANGELOG.md \
             /usr/share/doc/synqc/copyright /usr/share/doc/synqc/changelog.Debian.gz; do
        [ -f "$f" ] || { echo "missing $f"; exit 1; }
    done
    ls /usr/share/synqc/prometheus/*.yml >/dev/null
    ls /usr/share/synqc/grafana/*.json >/dev/null
    ls -d /usr/share/synqc/grafana/provisioning >/dev/null
    [ -x /usr/share/synqc/executors/qiskit_aer.py ] || { echo "missing executable /usr/share/synqc/executors/qiskit_aer.py"; exit 1; }'
check "/etc/synqc/synqc.toml is a conffile" \
    bash -c "dpkg-query -W -f='\${Conffiles}' synqc | grep -q '/etc/synqc/synqc.toml '"
check "unit enabled (multi-user.target.wants symlink)" \
    test -L /etc/systemd/system/multi-user.target.wants/synqc.service

# --- 5. systemd unit ------------------------------------------------------------------------
check "systemd-analyze verify (installed unit) is clean" bash -c '
    out=$(systemd-analyze verify /usr/lib/systemd/system/synqc.service 2>&1); rc=$?
    printf "%s\n" "$out"; [ "$rc" -eq 0 ] && [ -z "$out" ]'
cp "$UNIT_SRC" "$TMP/synqc.service"
check "systemd-analyze verify (systemd/synqc.service from the repo) is clean" bash -c "
    out=\$(systemd-analyze verify '$TMP/synqc.service' 2>&1); rc=\$?
    printf '%s\n' \"\$out\"; [ \"\$rc\" -eq 0 ] && [ -z \"\$out\" ]"
sec=$(systemd-analyze security --offline=true "$TMP/synqc.service" 2>&1)
score=$(printf '%s\n' "$sec" | sed -n 's/.*Overall exposure level for synqc.service: \([0-9.]*\).*/\1/p')
if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s < 2.0) }'; then
    pass "systemd-analyze security --offline=true: exposure $score (< 2.0)"
else
    fail "systemd-analyze security --offline=true: exposure ${score:-unknown} (needs < 2.0)"
    printf '%s\n' "$sec" | grep '✗' | sed 's/^/     | /'
fi
check "unit runs the packaged command line" \
    grep -qx 'ExecStart=/usr/bin/synqc serve --config /etc/synqc/synqc.toml' /usr/lib/systemd/system/synqc.service

# --- 6. Installed binary against the installed config ---------------------------------------
check "installed: synqc config check --config /etc/synqc/synqc.toml" \
    /usr/bin/synqc config check --config /etc/synqc/synqc.toml
# Lay the state directory out as systemd does for DynamicUser=yes
# (/var/lib/synqc -> private/synqc) so purge is tested on the real layout.
[ -d /var/lib/private ] || CREATED_PRIVATE=1
mkdir -p -m 0700 /var/lib/private/synqc
[ -e /var/lib/synqc ] || ln -s private/synqc /var/lib/synqc
port=$(free_port)
/usr/bin/synqc serve --config /etc/synqc/synqc.toml --listen "127.0.0.1:$port" >"$TMP/deb-serve.log" 2>&1 &
pid=$!; PIDS+=("$pid")
if wait_http "http://127.0.0.1:$port/health" 30; then
    pass "installed: serves /health with /etc/synqc/synqc.toml (--listen 127.0.0.1:$port)"
else
    fail "installed: serves /health with /etc/synqc/synqc.toml"; show "$TMP/deb-serve.log"
fi
check "installed: store written to /var/lib/synqc" bash -c '[ -n "$(ls -A /var/lib/private/synqc)" ]'
check "installed: exits 0 on SIGTERM" stop_pid "$pid" 20

# --- 7. Remove keeps state, purge deletes it ------------------------------------------------
echo "keep me" >/var/lib/synqc/remove-marker
check "dpkg -r synqc" dpkg -r synqc
check "after dpkg -r: /var/lib/synqc and its marker kept, binary gone, conffile kept" bash -c '
    [ -f /var/lib/synqc/remove-marker ] && [ ! -e /usr/bin/synqc ] && [ -f /etc/synqc/synqc.toml ]'
check "dpkg -P synqc" dpkg -P synqc
check "after dpkg -P: /var/lib/synqc, /var/lib/private/synqc and /etc/synqc gone" bash -c '
    [ ! -e /var/lib/synqc ] && [ ! -L /var/lib/synqc ] && [ ! -e /var/lib/private/synqc ] && [ ! -e /etc/synqc ]'
check "after dpkg -P: unit symlink gone" bash -c '[ ! -e /etc/systemd/system/multi-user.target.wants/synqc.service ]'
WE_INSTALLED_DEB=0
[ "$CREATED_PRIVATE" -eq 1 ] && rmdir /var/lib/private 2>/dev/null
CREATED_PRIVATE=0

# --- 8. lintian ---------------------------------------------------------------------------------
lintian "$DEB" >"$TMP/lintian.log" 2>&1; lrc=$?
errors=$(grep -c '^E:' "$TMP/lintian.log")
warnings=$(grep -c '^W:' "$TMP/lintian.log")
if [ "$lrc" -eq 0 ] && [ "$errors" -eq 0 ]; then
    pass "lintian: 0 errors, $warnings warnings"
else
    fail "lintian: $errors errors, $warnings warnings (exit $lrc)"
fi
grep -E '^[EW]:' "$TMP/lintian.log" | sed 's/^/     | /'

# --- 9. Container image -------------------------------------------------------------------------
# A second empty store: the image must come from the archive alone.
use_store run
check "image store is empty before podman load ($STORE)" store_holds 0
image=$(timeout 120 podman load -q -i "$IMAGE_TAR" 2>"$TMP/load.log" | sed -n 's/^Loaded image[^:]*: *//p' | head -n 1)
if [ -n "$image" ]; then pass "podman load: $image"; else fail "podman load -i $IMAGE_TAR"; show "$TMP/load.log"; summary; exit 1; fi

check "image holds the binary only (/synqc, /var/lib/synqc owned by 65532)" python3 - "$IMAGE_TAR" <<'PY'
import io, json, sys, tarfile
outer = tarfile.open(sys.argv[1])
manifest = json.load(outer.extractfile("manifest.json"))[0]
entries = {}
for layer in manifest["Layers"]:
    inner = tarfile.open(fileobj=io.BytesIO(outer.extractfile(layer).read()))
    for m in inner.getmembers():
        entries[m.name.rstrip("/").lstrip("./")] = m
files = sorted(n for n, m in entries.items() if not m.isdir())
print("files:", files)
assert files == ["synqc"], files
assert entries["var/lib/synqc"].uid == 65532, entries["var/lib/synqc"].uid
assert entries["synqc"].uid == 0 and entries["synqc"].mode & 0o022 == 0
PY
check "image config: USER 65532:65532, HEALTHCHECK, volume, port, OCI labels" bash -c "
    set -e
    i() { timeout 60 podman image inspect --format \"\$1\" '$image'; }
    [ \"\$(i '{{.Config.User}}')\" = 65532:65532 ]
    i '{{json .Config.Healthcheck}}' | grep -q healthcheck
    i '{{json .Config.Volumes}}' | grep -q /var/lib/synqc
    i '{{json .Config.ExposedPorts}}' | grep -q 8001
    i '{{json .Config.Entrypoint}}' | grep -q '\"/synqc\"'
    for l in title description version licenses; do
        [ -n \"\$(i \"{{index .Config.Labels \\\"org.opencontainers.image.\$l\\\"}}\")\" ] || { echo missing label \$l; exit 1; }
    done"

timeout 60 podman network create "$NET" >/dev/null 2>"$TMP/net.log" || { fail "podman network create"; show "$TMP/net.log"; }
timeout 60 podman volume create "$VOL" >/dev/null 2>"$TMP/vol.log" || { fail "podman volume create"; show "$TMP/vol.log"; }
hport=$(free_port)
run_synqc() {
    timeout 60 podman run -d --name "$CTR" --network "$NET" \
        -p "127.0.0.1:$hport:8001" -v "$VOL:/var/lib/synqc" "$image" >/dev/null
}
if run_synqc 2>"$TMP/run.log" && wait_http "http://127.0.0.1:$hport/health/live" 30; then
    pass "container (image from the empty store): /health/live answers 200 on 127.0.0.1:$hport"
else
    fail "container (image from the empty store): /health/live on 127.0.0.1:$hport"; show "$TMP/run.log"
    timeout 30 podman logs "$CTR" >"$TMP/ctr.log" 2>&1; show "$TMP/ctr.log"
fi
check "container: /health answers 200 through the published port" \
    bash -c "[ \"\$(curl -s -o /dev/null -m 5 -w '%{http_code}' http://127.0.0.1:$hport/health)\" = 200 ]"
check "container: runs as uid 65532" bash -c "[ \"\$(timeout 60 podman inspect --format '{{.Config.User}}' $CTR)\" = 65532:65532 ]"
check "container: HEALTHCHECK (podman healthcheck run) is healthy" timeout 30 podman healthcheck run "$CTR"

# A second container on the same network, found by container name. No image
# can be pulled here: one peer is the synqc image itself (its healthcheck
# client), the other runs the host's curl on an overlay of the host root.
check "peer container (synqc image) reaches http://$CTR:8001 by name" \
    timeout 60 podman run --rm --name "synqc-peer-$RUN_ID" --network "$NET" \
        --entrypoint /synqc "$image" healthcheck --url "http://$CTR:8001"
timeout 60 podman run --rm --network "$NET" --rootfs /:O \
    curl -sf -m 10 "http://$CTR:8001/metrics" >"$TMP/scrape.txt" 2>"$TMP/scrape.err"
if grep -q '^synqc_' "$TMP/scrape.txt"; then
    pass "peer container scrapes http://$CTR:8001/metrics by name ($(grep -c '^synqc_' "$TMP/scrape.txt") synqc_ samples)"
else
    fail "peer container scrapes http://$CTR:8001/metrics by name"; show "$TMP/scrape.err"; show "$TMP/scrape.txt" 5
fi

# Durability: submit, stop (SIGTERM, must exit 0 without SIGKILL), start a
# NEW container on the same volume, the run is still there.
resp=$(curl -s -m 10 -X POST -H 'Content-Type: application/json' \
    -d '{"preset":"hello_quantum_sim"}' "http://127.0.0.1:$hport/runs")
run_id=$(printf '%s' "$resp" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' 2>/dev/null)
if [ -n "$run_id" ]; then pass "container: POST /runs accepted run $run_id"; else fail "container: POST /runs"; note "$resp"; fi
# Let it finish, so the restart also proves the result was kept (bounded).
for _ in $(seq 1 60); do
    curl -s -m 5 "http://127.0.0.1:$hport/runs/$run_id" | grep -q '"status": *"\(succeeded\|failed\)"' && break
    sleep 0.5
done

t0=$(date +%s)
# podman's default 10 s stop timeout: the image's 8 s drain grace fits in it.
timeout 40 podman stop "$CTR" >"$TMP/stop.log" 2>&1; src=$?
took=$(( $(date +%s) - t0 ))
code=$(timeout 60 podman inspect --format '{{.State.ExitCode}}' "$CTR" 2>/dev/null)
if [ "$src" -eq 0 ] && [ "$code" = 0 ] && ! grep -qi sigkill "$TMP/stop.log"; then
    pass "podman stop: container exit code 0 after ${took}s (no SIGKILL)"
else
    fail "podman stop: podman status $src, container exit code ${code:-?} after ${took}s"; show "$TMP/stop.log"
fi
timeout 60 podman logs --tail 5 "$CTR" >"$TMP/ctr-stop.log" 2>&1
timeout 60 podman rm -f -t 0 "$CTR" >/dev/null 2>&1
if run_synqc 2>"$TMP/run2.log" && wait_http "http://127.0.0.1:$hport/health" 30; then
    body=$(curl -s -m 10 -w '\n%{http_code}' "http://127.0.0.1:$hport/runs/$run_id")
    if [ -n "$run_id" ] && [ "$(printf '%s' "$body" | tail -n 1)" = 200 ] && printf '%s' "$body" | grep -q "$run_id"; then
        pass "data survive a new container on the same volume (GET /runs/$run_id: 200, $(printf '%s' "$body" | grep -Eo '"status": *"(queued|running|succeeded|failed|cancelled)"' | head -n 1))"
    else
        fail "data survive a new container on the same volume"; note "$(printf '%s' "$body" | head -c 300)"
    fi
else
    fail "container restart on the same volume"; show "$TMP/run2.log"
fi
timeout 40 podman stop -t 15 "$CTR" >/dev/null 2>&1
timeout 60 podman rm -f -t 0 "$CTR" >/dev/null 2>&1

# --- 10. The unit under a real systemd (extra) ---------------------------------------------
# systemd is not PID 1 on CI hosts, so boot one in a throw-away container
# whose root is an overlay of this host's root (nothing pulled, nothing on
# the host changed), install the .deb there and let systemd run the unit
# with its whole sandbox. Skipped (not failed) where systemd cannot boot in
# a container. SYSTEMD_BOOT_TEST=0 skips it.
SD=synqc-systemd-$RUN_ID
sd() { timeout 60 podman exec "$SD" "$@"; }
if [ "${SYSTEMD_BOOT_TEST:-1}" = 1 ]; then
    booted=0
    if timeout 60 podman run -d --name "$SD" --privileged --systemd=always --network none \
            --tmpfs /tmp:rw,notmpcopyup --tmpfs /var/tmp:rw,notmpcopyup --tmpfs /run:rw,notmpcopyup \
            --rootfs /:O /lib/systemd/systemd --unit=multi-user.target >"$TMP/sd-run.log" 2>&1; then
        for _ in $(seq 1 60); do
            state=$(sd systemctl is-system-running 2>/dev/null)
            case "$state" in running|degraded) booted=1; break ;; esac
            sleep 0.5
        done
    fi
    if [ "$booted" -eq 0 ]; then
        note "skip: systemd does not boot in a container here ($(tail -n 1 "$TMP/sd-run.log" 2>/dev/null))"
    else
        note "systemd booted in container $SD ($state); installing the .deb there"
        # A build host's policy-rc.d (exit 101) forbids starting services;
        # a lab workstation has none. Removed in the container's overlay only.
        sd rm -f /usr/sbin/policy-rc.d
        # The checkout may live under /tmp, which is a fresh tmpfs in the
        # container: hand the package over explicitly.
        timeout 60 podman cp "$DEB" "$SD:/root/synqc.deb"
        check "systemd: dpkg -i enables and starts synqc.service" bash -c "
            timeout 120 podman exec '$SD' dpkg -i /root/synqc.deb &&
            timeout 20 podman exec '$SD' systemctl is-enabled synqc.service &&
            timeout 20 podman exec '$SD' systemctl is-active synqc.service"
        up=0
        for _ in $(seq 1 60); do
            [ "$(sd curl -s -o /dev/null -m 2 -w '%{http_code}' http://127.0.0.1:8001/health 2>/dev/null)" = 200 ] && { up=1; break; }
            sleep 0.5
        done
        if [ "$up" -eq 1 ]; then
            pass "systemd: hardened unit active, /health answers on 127.0.0.1:8001"
        else
            fail "systemd: synqc.service does not serve /health"
            sd systemctl status synqc.service --no-pager >"$TMP/sd-status.log" 2>&1
            sd journalctl -u synqc.service --no-pager -n 30 >>"$TMP/sd-status.log" 2>&1
            show "$TMP/sd-status.log" 40
        fi
        check "systemd: runs as a dynamic non-root user, store in /var/lib/private/synqc" bash -c "
            pid=\$(timeout 20 podman exec '$SD' systemctl show -P MainPID synqc.service)
            uid=\$(timeout 20 podman exec '$SD' awk '/^Uid:/ {print \$2}' /proc/\$pid/status)
            echo \"MainPID \$pid uid \$uid\"
            [ -n \"\$uid\" ] && [ \"\$uid\" -ne 0 ] &&
            timeout 20 podman exec '$SD' test -L /var/lib/synqc &&
            [ -n \"\$(timeout 20 podman exec '$SD' ls -A /var/lib/private/synqc)\" ]"
        # The sandbox must not hide what /metrics reports (process_* come
        # from /proc/self and /proc/stat).
        check "systemd: /metrics under the sandbox has synqc_ and process_ series" bash -c "
            m=\$(timeout 20 podman exec '$SD' curl -s -m 5 http://127.0.0.1:8001/metrics)
            printf '%s\n' \"\$m\" | grep -q '^synqc_' &&
            printf '%s\n' \"\$m\" | grep -q '^process_resident_memory_bytes' &&
            printf '%s\n' \"\$m\" | grep -q '^process_start_time_seconds'"
        sd_exposure=$(sd systemd-analyze security synqc.service 2>/dev/null | sed -n 's/.*Overall exposure level for synqc.service: \([0-9.]*\).*/\1/p')
        note "systemd-analyze security (live, in the container): ${sd_exposure:-unknown}"
        t0=$(date +%s)
        sd systemctl stop synqc.service >/dev/null 2>&1
        took=$(( $(date +%s) - t0 ))
        result=$(sd systemctl show -P Result synqc.service 2>/dev/null)
        status=$(sd systemctl show -P ExecMainStatus synqc.service 2>/dev/null)
        if [ "$result" = success ] && [ "$status" = 0 ]; then
            pass "systemd: systemctl stop took ${took}s, Result=success, exit status 0"
        else
            fail "systemd: systemctl stop took ${took}s, Result=${result:-?}, exit status ${status:-?}"
            sd journalctl -u synqc.service --no-pager -n 20 >"$TMP/sd-stop.log" 2>&1; show "$TMP/sd-stop.log" 20
        fi
        check "systemd: dpkg -P removes /var/lib/private/synqc" bash -c "
            timeout 120 podman exec '$SD' dpkg -P synqc &&
            ! timeout 20 podman exec '$SD' test -e /var/lib/private/synqc &&
            ! timeout 20 podman exec '$SD' test -L /var/lib/synqc"
    fi
    timeout 60 podman rm -f -t 5 "$SD" >/dev/null 2>&1
fi

summary
