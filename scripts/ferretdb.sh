#!/usr/bin/env bash
# FerretDB for blogscale's tests: a real MongoDB-wire database (FerretDB v1.24.2 with its
# SQLite handler) built from the Go module proxy. See docs/MONGODB.md.
#
#   scripts/ferretdb.sh build
#       Builds tests/ferretdb (our wrapper around FerretDB's embeddable package) if the
#       cached binary is missing, then prints its path. Idempotent; the cache is keyed by
#       the hash of tests/ferretdb's go.mod, go.sum and main.go, so a second run is instant.
#   scripts/ferretdb.sh start [--port N] [--dir DIR]
#       Builds if needed, starts FerretDB on 127.0.0.1 (port N, default: a free port picked
#       by the kernel) with its SQLite files in DIR/data (default: a new temp dir), waits
#       until it listens and prints shell assignments for eval:
#           FERRETDB_URI=mongodb://127.0.0.1:PORT/ FERRETDB_PID=... FERRETDB_PORT=...
#           FERRETDB_DIR=... FERRETDB_LOG=...
#       Starting again with the same --port and --dir reopens the same data.
#   scripts/ferretdb.sh stop PID
#       SIGTERM, waits up to 10 s, then SIGKILL. Only ever signals the PID it is given.
#
# Environment: GO (the go command; default /usr/local/go/bin/go, then `go` on PATH; Go >=
# 1.24 is required by FerretDB v1.24), BLOGSCALE_CACHE_DIR (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/blogscale-test, or /tmp/blogscale-test-cache-UID without a
# writable $HOME), FERRETDB_BUILD_TIMEOUT (s, default 900).
set -euo pipefail

src_dir=$(cd "$(dirname "$0")/.." && pwd)
mod_dir=$src_dir/tests/ferretdb
home_ok() {
    [[ -n ${HOME:-} && -d $HOME && -w $HOME ]]
}
if [[ -n ${BLOGSCALE_CACHE_DIR:-} ]]; then
    cache_root=$BLOGSCALE_CACHE_DIR
elif [[ -n ${XDG_CACHE_HOME:-} ]] || home_ok; then
    cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/blogscale-test
else
    cache_root=${TMPDIR:-/tmp}/blogscale-test-cache-$(id -u)
fi

die() {
    echo "ferretdb.sh: $*" >&2
    exit 1
}

find_go() {
    local g
    for g in "${GO:-}" /usr/local/go/bin/go "$(command -v go 2>/dev/null || true)"; do
        if [[ -n $g && -x $g ]]; then
            echo "$g"
            return 0
        fi
    done
    return 1
}

go_ok() {
    # FerretDB v1.24.2's go.mod says `go 1.24`: older toolchains cannot build it.
    local v
    v=$("$1" env GOVERSION 2>/dev/null) || return 1
    v=${v#go}
    local major=${v%%.*} rest=${v#*.}
    local minor=${rest%%.*}
    [[ $major =~ ^[0-9]+$ && $minor =~ ^[0-9]+$ ]] || return 1
    ((major > 1 || (major == 1 && minor >= 24)))
}

bin_path() {
    local key
    key=$(cat "$mod_dir/go.mod" "$mod_dir/go.sum" "$mod_dir/main.go" | sha256sum | cut -c1-16)
    echo "$cache_root/ferretdb-$key/blog-ferretdb"
}

cmd_build() {
    local bin go out
    bin=$(bin_path)
    if [[ -x $bin ]]; then
        echo "$bin"
        return 0
    fi
    go=$(find_go) || die "no Go toolchain found (set GO=/path/to/go; Go >= 1.24 is needed to build FerretDB v1.24.2)"
    go_ok "$go" || die "$go is $("$go" env GOVERSION 2>/dev/null || echo '?'); FerretDB v1.24.2 needs Go >= 1.24 (GOTOOLCHAIN=local forbids an automatic toolchain download)"
    mkdir -p "$(dirname "$bin")" || die "cannot create the cache dir $(dirname "$bin") (set BLOGSCALE_CACHE_DIR)"
    if ! home_ok; then
        # No usable $HOME (some CI users): keep Go's module and build caches in ours.
        export GOPATH=${GOPATH:-$cache_root/gopath} GOCACHE=${GOCACHE:-$cache_root/gocache}
    fi
    # Two tests may build at once: one builds under the lock, the other waits and reuses it.
    exec 9>"$(dirname "$bin")/.lock"
    flock 9
    if [[ ! -x $bin ]]; then
        echo "ferretdb.sh: building FerretDB v1.24.2 wrapper with $("$go" env GOVERSION) (first time only, ~1-2 min)" >&2
        out=$bin.tmp.$$
        if ! (cd "$mod_dir" && GOTOOLCHAIN=local GOFLAGS=-mod=mod \
                timeout "${FERRETDB_BUILD_TIMEOUT:-900}" nice "$go" build -trimpath -o "$out" .) >&2; then
            rm -f "$out"
            flock -u 9
            die "go build of tests/ferretdb failed (is the Go module proxy reachable? GOPROXY=$("$go" env GOPROXY))"
        fi
        mv -f "$out" "$bin"
    fi
    flock -u 9
    exec 9>&-
    echo "$bin"
}

cmd_start() {
    local port=0 dir="" bin pid log line uri i off
    while (($# > 0)); do
        case $1 in
        --port) port=${2:?--port needs a value}; shift 2 ;;
        --dir) dir=${2:?--dir needs a value}; shift 2 ;;
        *) die "start: unknown argument '$1'" ;;
        esac
    done
    [[ $port =~ ^[0-9]+$ ]] && ((port <= 65535)) || die "start: bad port '$port'"
    bin=$(cmd_build)
    if [[ -z $dir ]]; then
        dir=$(mktemp -d /tmp/blog-ferretdb.XXXXXX)
    fi
    mkdir -p "$dir/data"
    log=$dir/ferretdb.log
    touch "$log"
    off=$(($(stat -c %s "$log") + 1))   # a restart appends: read only what this run writes
    # stdout (the ready line) and stderr (FerretDB's own log) both go to the log file; the
    # binary is detached from our stdout so `eval "$(ferretdb.sh start)"` returns.
    setsid "$bin" -port "$port" -dir "$dir/data" >>"$log" 2>&1 </dev/null &
    pid=$!
    for ((i = 0; i < 300; i++)); do
        line=$(tail -c "+$off" "$log" | grep -a -m 1 '^blog-ferretdb ready uri=' || true)
        if [[ -n $line ]]; then
            uri=${line#blog-ferretdb ready uri=}
            pid=${uri##* pid=}          # the server's own pid (setsid may have forked)
            uri=${uri%% *}
            port=${uri##*:}
            port=${port%/}
            printf 'FERRETDB_URI=%q\nFERRETDB_PID=%q\nFERRETDB_PORT=%q\nFERRETDB_DIR=%q\nFERRETDB_LOG=%q\n' \
                "$uri" "$pid" "$port" "$dir" "$log"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$log" >&2 || true
            die "FerretDB exited before it was ready (log: $log)"
        fi
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    tail -n 20 "$log" >&2 || true
    die "FerretDB not ready after 30 s (log: $log)"
}

cmd_stop() {
    local pid=${1:-} i
    [[ $pid =~ ^[0-9]+$ ]] || die "stop: needs the PID printed by start"
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "ferretdb.sh: $pid still running after 10 s, killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

case ${1:-} in
build) shift; cmd_build "$@" ;;
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
*) die "usage: $0 build | start [--port N] [--dir DIR] | stop PID" ;;
esac
