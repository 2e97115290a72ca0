#!/usr/bin/env bash
# Installs every Debian 12 package that blogscale's build, demo and tests need.
# Idempotent: when everything is present it only runs dpkg-query and exits.
#   scripts/install-deps.sh          build + runtime + demo
#   scripts/install-deps.sh --test   ... plus everything the test suite uses
set -euo pipefail

build_pkgs=(
    build-essential cmake ninja-build pkg-config
    libev-dev libssl-dev libhiredis-dev libmongoc-dev libbson-dev
    libyaml-dev libmicrohttpd-dev liblmdb-dev libxxhash-dev libjansson-dev
)
runtime_pkgs=(
    redis-server lmdb-utils openssl curl ca-certificates
)
test_pkgs=(
    libcmocka-dev libcurl4-openssl-dev
    wrk haproxy nginx-light
    clang libclang-rt-14-dev
    prometheus valgrind python3 procps iproute2 psmisc apache2-utils
    lintian rpm strace systemd
    jq
)
# benchmarks (tests/bench/run-all): plots, and nginx's L4 (stream) module for the comparison
test_pkgs+=(gnuplot-nox libnginx-mod-stream)

want=("${build_pkgs[@]}" "${runtime_pkgs[@]}")
if [ "${1:-}" = "--test" ]; then
    want+=("${test_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-deps: all ${#want[@]} packages present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: run as root (or: sudo $0 $*)" >&2
    exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian's service packages start their daemons on install; blogscale runs its own
# instances on private ports, so keep the packaged ones from starting.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created_policy=1
fi
trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}"
