#!/usr/bin/env bash
# blog-node on the mongodb store driver, against FerretDB v1.24.2 (SQLite handler, built
# and started by scripts/ferretdb.sh) - a benchmark, not a test. Seeds NPOSTS posts of
# ~1 KiB through the API, then runs wrk for: GET /posts/{id} over random ids on a node with
# the cache off (every request reaches the database), the same over HOT ids read once
# beforehand on a node with the cache on (hits), and POST /posts. Reports req/s, p50/p99 and the CPU µs per
# request of blog-node and of FerretDB (utime+stime from /proc before/after / requests).
#
# FerretDB is a Go proxy translating to SQLite, and v1.24's point reads cannot use its own
# _id index (docs/MONGODB.md): every read scans the collection, so these figures measure
# FerretDB far more than the driver; a MongoDB server costs much less per operation. Compare with the LMDB rows of
# docs/BENCHMARKS.md only as "what the network store costs here".
#
# usage: tests/bench/mongo-bench.sh [BUILD_DIR]     (default build-mongo, then build)
# env:   DURATION=10s CONNS=16 NODE_THREADS=2 NPOSTS=2000 HOT=200
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-}
if [[ -z $build ]]; then
    for b in "$root/build-mongo" "$root/build"; do
        [[ -x $b/node/blog-node ]] && build=$b && break
    done
fi
node_bin=${BLOG_NODE_BIN:-$build/node/blog-node}
[[ -x $node_bin ]] || { echo "no blog-node binary (build first or pass BUILD_DIR)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 1; }

DURATION=${DURATION:-10s}
CONNS=${CONNS:-16}
NODE_THREADS=${NODE_THREADS:-2}
NPOSTS=${NPOSTS:-2000}
HOT=${HOT:-200}
TOKEN=bench-token
CLK_TCK=$(getconf CLK_TCK)
fdb=$root/scripts/ferretdb.sh

tmp=$(mktemp -d /tmp/mongo-bench.XXXXXX)
pids=()
fdb_pid=
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
    done
    [[ -n $fdb_pid ]] && "$fdb" stop "$fdb_pid"
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_http() {
    for _ in $(seq 1 200); do
        curl -fs -o /dev/null "$1" && return 0
        sleep 0.05
    done
    echo "timeout waiting for $1" >&2
    return 1
}
cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}

"$fdb" build >/dev/null
eval "$("$fdb" start --dir "$tmp/fdb")"
fdb_pid=$FERRETDB_PID

token_sha=$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)
start_node() {   # name cache_yaml -> prints the port
    local name=$1 cache=$2 port
    port=$(free_port)
    cat >"$tmp/$name.yaml" <<EOF
cluster: {name: bench, write_tokens_sha256: ["$token_sha"]}
node:
  threads: $NODE_THREADS
  store: {driver: mongodb, uri: "$FERRETDB_URI", database: bench, server_selection_timeout: 2s}
  cache: $cache
  limits: {post_body: 1MiB, asset: 10MiB}
nodes: [{name: $name, addr: "127.0.0.1:$port"}]
log: {level: warn}
EOF
    "$node_bin" --config "$tmp/$name.yaml" --name "$name" 2>"$tmp/$name.log" &
    echo "$port $!"
}
read -r p_nc pid_nc < <(start_node nocache "{enabled: false}")
read -r p_c pid_c < <(start_node cached "{size: 256MiB, ttl: 300s, negative_ttl: 2s}")
pids+=("$pid_nc" "$pid_c")
wait_http "http://127.0.0.1:$p_nc/readyz"
wait_http "http://127.0.0.1:$p_c/readyz"

echo "seeding $NPOSTS posts..." >&2
python3 - "$p_nc" "$TOKEN" "$NPOSTS" "$tmp/ids.txt" <<'EOF'
import http.client, json, sys, threading
port, token, n, out = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
ids, lock = [], threading.Lock()
def work(k, count):
    c = http.client.HTTPConnection("127.0.0.1", port)
    h = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    for i in range(count):
        body = json.dumps({"title": "post %d-%d" % (k, i), "author": "seed",
                           "tags": ["bench", "seed"], "body": "s" * 900})
        c.request("POST", "/posts", body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        if r.status != 201:
            raise SystemExit("seed failed: %d %s" % (r.status, data[:200]))
        with lock:
            ids.append(json.loads(data)["id"])
T = 8
ts = [threading.Thread(target=work, args=(k, n // T + (1 if k < n % T else 0))) for k in range(T)]
[t.start() for t in ts]
[t.join() for t in ts]
open(out, "w").write("\n".join(ids) + "\n")
EOF
export BENCH_IDS="$tmp/ids.txt" BENCH_TOKEN="$TOKEN"

run() {   # label node_pid url lua
    local label=$1 pid=$2 url=$3 lua=$4
    local nb fb na fa out reqs rps p50 p99
    nb=$(cpu_ticks "$pid")
    fb=$(cpu_ticks "$fdb_pid")
    out=$(wrk -t1 "-c$CONNS" "-d$DURATION" --latency -s "$here/lua/$lua" "$url")
    na=$(cpu_ticks "$pid")
    fa=$(cpu_ticks "$fdb_pid")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    if grep -q "Non-2xx" <<<"$out"; then
        echo "warning: $label: $(grep Non-2xx <<<"$out")" >&2
    fi
    awk -v l="$label" -v r="$rps" -v a="$p50" -v b="$p99" -v n="$reqs" -v hz="$CLK_TCK" \
        -v tn=$((na - nb)) -v tf=$((fa - fb)) \
        'BEGIN { printf "| %s | %s | %s | %s | %.0f | %.0f |\n", l, r, a, b,
                 tn / hz * 1e6 / n, tf / hz * 1e6 / n }'
}

echo
echo "blog-node $("$node_bin" --version | awk '{print $2}') on the mongodb driver, FerretDB v1.24.2" \
     "(SQLite) on the same host, $(wc -l <"$tmp/ids.txt") posts of ~1 KiB," \
     "node.threads=$NODE_THREADS, wrk -t1 -c$CONNS -d$DURATION, $(nproc) CPUs, $(date -u +%FT%TZ)"
echo
echo "| workload | req/s | p50 | p99 | blog-node CPU µs/req | FerretDB CPU µs/req |"
echo "|---|---:|---:|---:|---:|---:|"
run "GET /posts/{id} random, cache off" "$pid_nc" "http://127.0.0.1:$p_nc/posts/x" get_random.lua
# Cached: a hot set of HOT ids, read once first so the run measures hits.
head -n "$HOT" "$tmp/ids.txt" >"$tmp/hot.txt"
while read -r id; do
    curl -fs -o /dev/null "http://127.0.0.1:$p_c/posts/$id"
done <"$tmp/hot.txt"
BENCH_IDS="$tmp/hot.txt" run "GET /posts/{id} random of $HOT hot ids, cache on" "$pid_c" \
    "http://127.0.0.1:$p_c/posts/x" get_random.lua
run "POST /posts" "$pid_nc" "http://127.0.0.1:$p_nc/posts" post.lua
