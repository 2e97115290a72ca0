#!/usr/bin/env bash
# Soak (issue 11 item 5; not in CI): a local cluster (Redis, three blog-node processes on
# one LMDB directory with the hot cache on, blog-lb) under a steady mixed load through the
# LB for MINUTES minutes, with a node restarted every minute (round robin: graceful SIGTERM,
# or SIGKILL every other time with --kill9). Reports:
#   - errors: failed and stale requests by kind (target 0; with --kill9 a POST in flight
#     at a kill may fail), then a read back of every acknowledged write (nothing lost);
#   - RSS of every process at the start (after a 20 s warm-up) and at the end (a restarted
#     node is a new process: its end RSS is since its restart);
#   - p99 (and p50, requests, errors) per minute.
#
# usage: tests/soak/soak.sh [MINUTES] [--kill9] [--rate R] [--conns N]
#   MINUTES default 10; binaries from $BLOG_BUILD_DIR (default: <repo>/build).
# Exit 0 when no request failed or was stale and the read back is exact.
set -u -o pipefail

MINUTES=10
KILL9=0
RATE=300
CONNS=16
while [ $# -gt 0 ]; do
    case "$1" in
    --kill9) KILL9=1 ;;
    --rate) RATE=$2; shift ;;
    --conns) CONNS=$2; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) MINUTES=$1 ;;
    esac
    shift
done
[[ "$MINUTES" =~ ^[0-9]+$ ]] && [ "$MINUTES" -ge 1 ] || { echo "MINUTES must be >= 1" >&2; exit 2; }

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BLOG_BUILD_DIR:-$REPO/build}
NODE_BIN=${BLOG_NODE_BIN:-$BUILD/node/blog-node}
LB_BIN=${BLOG_LB_BIN:-$BUILD/lb/blog-lb}
LOAD_BIN=$BUILD/tests/load/blog-load
for exe in "$NODE_BIN" "$LB_BIN" "$LOAD_BIN" /usr/bin/redis-server; do
    [ -x "$exe" ] || { echo "soak: $exe missing (build first: ninja -C $BUILD)" >&2; exit 2; }
done

TOKEN=soak-token
DIR=$(mktemp -d /tmp/blogsoak.XXXXXX)
declare -A PID
KEEP=0
cleanup() {
    local p
    for p in "${PID[@]}"; do kill -9 "$p" 2>/dev/null; done
    for p in "${PID[@]}"; do wait "$p" 2>/dev/null; done
    if [ $KEEP = 1 ]; then
        rm -rf "$DIR/data"
        echo "soak: logs kept in $DIR (remove it when done)"
    else
        rm -rf "$DIR"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
RP=$(free_port); LP=$(free_port); AP=$(free_port)
declare -A NP=([n1]=$(free_port) [n2]=$(free_port) [n3]=$(free_port))
mkdir -p "$DIR/data"
cat >"$DIR/cluster.yaml" <<YAML
cluster: {name: soak, redis: "redis://127.0.0.1:$RP/0",
          write_tokens_sha256: ["$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)"]}
node:
  threads: 2
  store: {driver: lmdb, path: "$DIR/data", map_size: 2GiB}
  cache: {size: 64MiB, ttl: 300s, negative_ttl: 2s}
  shutdown_timeout: 5s
lb:
  listeners: [{bind: "127.0.0.1:$LP", mode: http}]
  admin: {bind: "127.0.0.1:$AP", metrics_public: true}
  workers: 2
  access_log: false                 # the node logs keep info level (redis link changes)
  health: {interval: 250ms, timeout: 500ms, rise: 2, fall: 2}
  balance: {retries: 1, retry_budget: 0.2}
  limits: {connect_timeout: 300ms, response_timeout: 2s, queue_timeout: 3s}
nodes:
  - {name: n1, addr: "127.0.0.1:${NP[n1]}"}
  - {name: n2, addr: "127.0.0.1:${NP[n2]}"}
  - {name: n3, addr: "127.0.0.1:${NP[n3]}"}
log: {level: info}
YAML

wait_http() {   # url status seconds
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
start_node() {
    "$NODE_BIN" --config "$DIR/cluster.yaml" --name "$1" >>"$DIR/$1.log" 2>&1 &
    PID[$1]=$!
    wait_http "http://127.0.0.1:${NP[$1]}/readyz" 200 20 || { echo "soak: $1 not ready" >&2; exit 1; }
}
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo "?"; }
metric() {
    curl -s -m 2 "http://127.0.0.1:$AP/metrics" | awk -v s="$1" '$1 == s { print $2; exit }'
}

/usr/bin/redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" \
    >"$DIR/redis.log" 2>&1 &
PID[redis]=$!
for ((i = 0; i < 50; i++)); do redis-cli -p "$RP" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
for n in n1 n2 n3; do start_node "$n"; done
"$LB_BIN" --config "$DIR/cluster.yaml" >"$DIR/lb.log" 2>&1 &
PID[lb]=$!
wait_http "http://127.0.0.1:$AP/healthz" 200 10 || { echo "soak: blog-lb did not start" >&2; exit 1; }
sleep 1

echo "soak: $MINUTES min, $CONNS connections, $RATE requests/s (GET 60 PUT 15 POST 12" \
     "DELETE 3 LIST 10), a node restarted every 60 s ($([ $KILL9 = 1 ] && echo \
     'SIGTERM / SIGKILL alternating' || echo 'graceful SIGTERM')); $(nproc) CPUs," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$LOAD_BIN" --url "http://127.0.0.1:$LP" --token "$TOKEN" --conns "$CONNS" --rate "$RATE" \
    --duration-ms $((MINUTES * 60000)) --mix 60,15,12,3,10 --seed-posts 200 --tag soak \
    --interval-s 60 --verify --timeout-ms 10000 >"$DIR/load.out" 2>"$DIR/load.err" &
LOAD=$!
PID[load]=$LOAD

sleep 20
declare -A RSS0 PID0
for p in redis n1 n2 n3 lb; do RSS0[$p]=$(rss "${PID[$p]}"); PID0[$p]=${PID[$p]}; done

restarts=0
nodes=(n1 n2 n3)
t_end=$((SECONDS + MINUTES * 60 - 20))
next=$((SECONDS + 40))                      # first restart at ~1 min
while kill -0 "$LOAD" 2>/dev/null && [ $SECONDS -lt $t_end ]; do
    if [ $SECONDS -ge $next ] && [ $((t_end - SECONDS)) -gt 15 ]; then
        n=${nodes[$((restarts % 3))]}
        sig=TERM
        [ $KILL9 = 1 ] && [ $((restarts % 2)) = 1 ] && sig=KILL
        kill -"$sig" "${PID[$n]}"
        wait "${PID[$n]}" 2>/dev/null
        start_node "$n"
        restarts=$((restarts + 1))
        echo "soak: t=$((SECONDS))s restarted $n (SIG$sig)"
        next=$((next + 60))
    fi
    sleep 1
done
declare -A RSS1
for p in redis n1 n2 n3 lb; do RSS1[$p]=$(rss "${PID[$p]}"); done
ejections=$(curl -s -m 2 "http://127.0.0.1:$AP/metrics" | awk '/^blog_lb_node_ejections_total/ { s += $2 } END { print s + 0 }')
retries=$(metric blog_lb_retries_total)
wait "$LOAD"
RC=$?

echo
echo "== per minute (through the LB) =="
grep '^interval' "$DIR/load.out" | sed 's/^interval /  /'
echo "== totals =="
grep '^summary' "$DIR/load.out" | sed 's/^summary /  /'
grep '^verify' "$DIR/load.out" | sed 's/^verify /  read back: /'
echo "  node restarts: $restarts; LB ejections: $ejections; LB retries: ${retries:-?}"
echo "== RSS (KiB): start (after 20 s) -> end =="
for p in redis lb n1 n2 n3; do
    note=""
    [ "${PID0[$p]}" != "${PID[$p]}" ] && note=" (restarted: end value is the new process's)"
    printf '  %-6s %8s -> %8s%s\n' "$p" "${RSS0[$p]}" "${RSS1[$p]}" "$note"
done
if [ $RC -ne 0 ]; then
    KEEP=1
    echo "== failures (first 20) =="
    grep -E '^#   (FAIL|STALE)' "$DIR/load.err" | head -20
fi
echo "soak: $([ $RC = 0 ] && echo PASS || echo FAIL) (blog-load exit $RC)"
exit $RC
