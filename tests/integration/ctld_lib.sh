# Shared by tests/integration/test_ctld_*.sh (sourced; not a test itself): a cluster of
# blog-lb + 2 config nodes on one LMDB + blog-ctld with the default hooks
# (packaging/hooks/spawn-node, stop-node) on 127.0.0.1, free ports, a temp dir, and
# cleanup that leaves no process behind (spawned nodes are stopped through their pid
# files in the hook dir).
set -euo pipefail
LB=${BLOG_LB_BIN:?BLOG_LB_BIN not set}
NODE=${BLOG_NODE_BIN:?BLOG_NODE_BIN not set}
CTLD=${BLOG_CTLD_BIN:?BLOG_CTLD_BIN not set}
BLOGCTL=${BLOGCTL_BIN:?BLOGCTL_BIN not set}
SRC=${BLOG_SOURCE_DIR:?BLOG_SOURCE_DIR not set}
LOAD=${BLOG_LOAD_BIN:-${BLOG_BUILD_DIR:?BLOG_BUILD_DIR not set}/tests/load/blog-load}
[ -x "$LOAD" ] || { echo "SKIP: $LOAD not built"; exit 0; }
[ -x "$CTLD" ] || { echo "FAIL: $CTLD not built"; exit 1; }

tmp=$(mktemp -d /tmp/test_ctld.XXXXXX)
pids=""
ctld_pid=""
T0=$(date +%s)
ADMIN_TOKEN=ctld-test-admin
WRITE_TOKEN=ctld-test-write
export BLOGSCALE_ADMIN_TOKEN=$ADMIN_TOKEN
export BLOGSCALE_HOOK_DIR=$tmp/hooks
export BLOGSCALE_SPAWN_MODE=process
export BLOG_NODE_BIN=$NODE

cleanup() {
    local p f
    for p in $ctld_pid $pids; do kill -KILL "$p" 2>/dev/null || true; done
    for f in "$tmp"/hooks/*.pid; do
        [ -e "$f" ] || continue
        p=$(cat "$f" 2>/dev/null || true)
        [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true
    done
    for p in $ctld_pid $pids; do wait "$p" 2>/dev/null || true; done
    if [ -n "${KEEP_TMP:-}" ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

fail() {
    echo "FAIL ($(($(date +%s) - T0))s): $*" >&2
    echo "--- ctld log (last 40 lines)" >&2
    tail -n 40 "$tmp/ctld.log" >&2 2>/dev/null || true
    echo "--- LB nodes" >&2
    admin GET /nodes >&2 2>/dev/null || true
    exit 1
}
log() { echo "[$(($(date +%s) - T0))s] $*"; }

ports=$(python3 -c '
import socket
ss=[socket.socket() for _ in range(6)]
for s in ss: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
read -r P_LB P_ADMIN P_N1 P_N2 P_CTLD P_CTLD2 <<<"$ports"
# a port range for spawn-node that nothing listens on now (30 ports)
export BLOGSCALE_SPAWN_PORT_FIRST=$(python3 -c '
import random, socket
for _ in range(200):
    b = random.randrange(20000, 60000)
    ok = True
    for p in range(b, b + 30):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            ok = False
        s.close()
        if not ok:
            break
    if ok:
        print(b); break')
export BLOGSCALE_SPAWN_PORT_LAST=$((BLOGSCALE_SPAWN_PORT_FIRST + 29))
mkdir -p "$tmp/data" "$tmp/hooks"
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }

# write_config FILE SCALE_UP SCALE_DOWN [extra autoscale lines]
write_config() {
    cat >"$1" <<YAML
cluster:
  name: ctldtest
${REDIS_URL:+  redis: "$REDIS_URL"}
  write_tokens_sha256: ["$(sha "$WRITE_TOKEN")"]
lb:
  listeners: [{bind: "127.0.0.1:$P_LB", mode: http}]
  admin: {bind: "127.0.0.1:$P_ADMIN", token_sha256: "$(sha "$ADMIN_TOKEN")"}
  workers: 1
  health: {interval: 200ms, timeout: 1s, rise: 1, fall: 3}
  shutdown_timeout: 5s
node:
  threads: 2
  store: {driver: lmdb, path: "$tmp/data", map_size: 256MiB}
  cache: {enabled: false}
  shutdown_timeout: 5s
nodes:
  - {name: n1, addr: "127.0.0.1:$P_N1"}
  - {name: n2, addr: "127.0.0.1:$P_N2"}
autoscale:
  interval: 500ms
  min: 2
  max: 4
  target_rps_per_node: 50
  tolerance: 0.1
  up_window: 1s
  down_window: 3s
  cooldown: 1s
  hook_timeout: ${HOOK_TIMEOUT:-15s}
  scale_up: "$2"
  scale_down: "$3"
  bind: "127.0.0.1:$P_CTLD"
  state_file: "$tmp/ctld.json"
${4:-}
log:
  level: info
YAML
}

# admin METHOD PATH [BODY]: the LB admin API, body on stdout
admin() {
    curl -sS -m 5 -X "$1" -H "Authorization: Bearer $ADMIN_TOKEN" \
        ${3:+-H 'Content-Type: application/json' --data "$3"} "http://127.0.0.1:$P_ADMIN$2"
}

# node names of the LB, sorted, one line ("n1 n2 auto-20001")
lb_nodes() {
    admin GET /nodes | python3 -c '
import json, sys
print(" ".join(sorted(n["name"] for n in json.load(sys.stdin)["nodes"])))'
}

# the LB's nodes not draining
lb_active_count() {
    admin GET /nodes | python3 -c '
import json, sys
print(sum(1 for n in json.load(sys.stdin)["nodes"] if n["state"] != "draining"))'
}

# metric NAME [LABELS]: a sample of ctld's /metrics (0 when absent)
metric() {
    local name=$1
    [ -n "${2:-}" ] && name="$1{$2}"
    { curl -sS -m 3 "http://127.0.0.1:${CTLD_PORT:-$P_CTLD}/metrics" 2>/dev/null || true; } | awk -v n="$name" '
        $1 == n { v = $2 } END { print (v == "" ? 0 : v) }'
}

events_total() {
    { curl -sS -m 3 "http://127.0.0.1:${CTLD_PORT:-$P_CTLD}/metrics" 2>/dev/null || true; } | awk '
        /^blog_ctld_scale_events_total\{/ { s += $2 } END { print s + 0 }'
}

start_cluster() {
    local cfg=$1 i
    "$NODE" --config "$cfg" --name n1 >>"$tmp/n1.log" 2>&1 &
    pids="$pids $!"
    "$NODE" --config "$cfg" --name n2 >>"$tmp/n2.log" 2>&1 &
    pids="$pids $!"
    for i in $(seq 1 150); do
        curl -sf -m 1 "http://127.0.0.1:$P_N1/readyz" >/dev/null 2>&1 \
            && curl -sf -m 1 "http://127.0.0.1:$P_N2/readyz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    "$LB" --config "$cfg" >>"$tmp/lb.log" 2>&1 &
    pids="$pids $!"
    for i in $(seq 1 150); do
        [ "$(curl -s -m 1 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P_LB/posts?limit=1")" = 200 ] && return 0
        sleep 0.1
    done
    fail "the LB did not serve /posts within 15 s"
}

# start_ctld CONFIG [ctld options...]
start_ctld() {
    local cfg=$1
    shift
    "$CTLD" --config "$cfg" "$@" >>"$tmp/ctld.log" 2>&1 &
    ctld_pid=$!
    local i
    for i in $(seq 1 100); do
        curl -sf -m 1 "http://127.0.0.1:${CTLD_PORT:-$P_CTLD}/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$ctld_pid" 2>/dev/null || fail "blog-ctld exited at start"
        sleep 0.1
    done
    fail "blog-ctld did not serve /healthz within 10 s"
}

stop_ctld() {
    [ -n "$ctld_pid" ] || return 0
    kill -TERM "$ctld_pid" 2>/dev/null || true
    wait "$ctld_pid" 2>/dev/null || true
    ctld_pid=""
}

# wait_until SECONDS WHAT CMD...: polls CMD every 0.25 s (CMD's arguments are expanded once:
# put a "$(...)" that must be re-read in a function)
wait_until() {
    local limit=$1 what=$2 end
    shift 2
    end=$(($(date +%s) + limit))
    while ! "$@"; do
        [ "$(date +%s)" -lt "$end" ] || fail "timed out after ${limit}s waiting for: $what"
        sleep 0.25
    done
}

# load RATE DURATION_MS TAG: blog-load through the LB in the background (pid in $load_pid)
load() {
    "$LOAD" --url "http://127.0.0.1:$P_LB" --token "$WRITE_TOKEN" --conns 8 --rate "$1" \
        --duration-ms "$2" --mix 90,0,5,0,5 --seed-posts 20 --tag "$3" --timeout-ms 10000 \
        >"$tmp/load-$3.out" 2>&1 &
    load_pid=$!
}

spawned_running() {
    local f n=0
    for f in "$tmp"/hooks/*.pid; do
        [ -e "$f" ] || continue
        kill -0 "$(cat "$f")" 2>/dev/null && n=$((n + 1))
    done
    echo $n
}

no_spawned() { [ "$(spawned_running)" = 0 ]; }
ctld_leads() { [ "$(metric blog_ctld_leader)" = 1 ]; }
