#!/usr/bin/env bash
# Builds the images of the swarm end-to-end tests from local files (no registry is
# reachable, so nothing is pulled):
#
#   wharf-test/backend:latest   busybox httpd that answers with its task's name
#                               (tests/swarm/backend; needs Debian's busybox-static)
#   wharf-test/wharf:latest     WHARF_BINARY with the libraries `ldd` lists, debug info
#                               stripped (tests/swarm/wharf)
#
# Usage: tests/swarm/build-images.sh WHARF_BINARY
#
# Idempotent and fast when nothing changed: each image carries a hash of its inputs in
# the label org.wharf.test.inputs and is rebuilt only when that hash changes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HASH_LABEL=org.wharf.test.inputs
BACKEND_IMAGE=wharf-test/backend:latest
WHARF_IMAGE=wharf-test/wharf:latest

fail() {
    printf 'build-images.sh: %s\n' "$*" >&2
    exit 1
}

[ "$#" -eq 1 ] || fail "usage: $0 WHARF_BINARY"
wharf_bin=$1
[ -x "$wharf_bin" ] || fail "$wharf_bin is not an executable (build wharf first)"

busybox=$(command -v busybox) || fail "busybox not found (apt-get install busybox-static)"
# A dynamically linked busybox (Debian's `busybox` package) would not run FROM scratch.
if ldd "$busybox" >/dev/null 2>&1; then
    fail "$busybox is dynamically linked; install busybox-static instead"
fi

staging=$(mktemp -d "${TMPDIR:-/tmp}/wharf-images.XXXXXX")
trap 'rm -rf "$staging"' EXIT

# The hash recorded on an image, or nothing when the image does not exist.
image_hash() {
    docker image inspect --format "{{ index .Config.Labels \"$HASH_LABEL\" }}" "$1" 2>/dev/null || true
}

# build IMAGE CONTEXT HASH
build() {
    # The legacy builder is enough (no RUN step) and needs no buildx plugin.
    DOCKER_BUILDKIT=0 docker build --quiet --label "$HASH_LABEL=$3" --tag "$1" "$2" >/dev/null 2>"$staging/build.err" ||
        fail "docker build of $1 failed: $(cat "$staging/build.err")"
    echo "$1: built"
}

# ---------------------------------------------------------------------------
# wharf-test/backend
# ---------------------------------------------------------------------------
backend_hash=$({
    sha256sum <"$busybox"
    cd "$here" && sha256sum backend/Dockerfile backend/start.sh backend/cgi-bin/slow
} | sha256sum | cut -d' ' -f1)

if [ "$(image_hash "$BACKEND_IMAGE")" = "$backend_hash" ]; then
    echo "$BACKEND_IMAGE: up to date"
else
    ctx="$staging/backend"
    mkdir -p "$ctx/rootfs/bin" "$ctx/rootfs/www/cgi-bin" "$ctx/rootfs/tmp"
    cp "$here/backend/Dockerfile" "$ctx/"
    cp "$busybox" "$ctx/rootfs/bin/busybox"
    for applet in $("$busybox" --list); do
        [ "$applet" = busybox ] || ln -s busybox "$ctx/rootfs/bin/$applet"
    done
    cp "$here/backend/start.sh" "$ctx/rootfs/start.sh"
    cp "$here/backend/cgi-bin/slow" "$ctx/rootfs/www/cgi-bin/slow"
    build "$BACKEND_IMAGE" "$ctx" "$backend_hash"
fi

# ---------------------------------------------------------------------------
# wharf-test/wharf
# ---------------------------------------------------------------------------
# Absolute paths in ldd's output: `libc.so.6 => /lib/.../libc.so.6 (0x...)` and the loader.
mapfile -t libs < <(ldd "$wharf_bin" | grep -o '/[^ ]*' | sort -u)

wharf_hash=$({
    sha256sum <"$wharf_bin"
    for lib in "${libs[@]}"; do
        printf '%s ' "$lib"
        sha256sum <"$lib"
    done
    cd "$here" && sha256sum wharf/Dockerfile
} | sha256sum | cut -d' ' -f1)

if [ "$(image_hash "$WHARF_IMAGE")" = "$wharf_hash" ]; then
    echo "$WHARF_IMAGE: up to date"
else
    ctx="$staging/wharf"
    mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/tmp"
    cp "$here/wharf/Dockerfile" "$ctx/"
    # Debug info makes up three quarters of a debug build; symbols stay for backtraces.
    strip --strip-debug -o "$ctx/rootfs/usr/local/bin/wharf" "$wharf_bin"
    for lib in "${libs[@]}"; do
        cp --parents -L "$lib" "$ctx/rootfs/"
    done
    build "$WHARF_IMAGE" "$ctx" "$wharf_hash"
fi
