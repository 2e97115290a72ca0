#!/usr/bin/env bash
# blog-node benchmark (not a test). Seeds 10,000 posts of ~1 KiB through the API, then runs
# wrk -t1 -c64 for each workload against blog-node (LMDB store, cache off) and, in the same
# run, against Debian's nginx answering `return 200` with a body of the same size as a post
# (the in-run reference: this host's speed drifts, compare ratios only).
#
# Reports req/s, p50/p99 and the measured process's CPU µs per request (utime+stime from
# /proc/PID/stat before and after, divided by the requests wrk completed).
#
# usage: tests/bench/node-bench.sh [BUILD_DIR]      (default build-nodeapi, then build)
# env:   DURATION=10s CONNS=64 NODE_THREADS=auto NPOSTS=10000 ROUNDS=1
#        ONLY=REGEX   run only the node workloads whose label matches (e.g. ONLY='^POST')
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-}
if [[ -z "$build" ]]; then
    for b in "$root/build-nodeapi" "$root/build"; do
        [[ -x "$b/node/blog-node" ]] && build=$b && break
    done
fi
node_bin=${BLOG_NODE_BIN:-$build/node/blog-node}
[[ -x "$node_bin" ]] || { echo "no blog-node binary (build first or pass BUILD_DIR)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || { echo "nginx is not installed" >&2; exit 1; }
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
NODE_THREADS=${NODE_THREADS:-auto}
NPOSTS=${NPOSTS:-10000}
ROUNDS=${ROUNDS:-1}
ONLY=${ONLY:-}
TOKEN=bench-token
CLK_TCK=$(getconf CLK_TCK)

tmp=$(mktemp -d /tmp/node-bench.XXXXXX)
node_pid=
nginx_pid=
cleanup() {
    [[ -n "$node_pid" ]] && kill "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null || true
    [[ -n "$nginx_pid" ]] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null || true
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

# utime+stime of <pid> in clock ticks
cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}

# ---- blog-node
node_port=$(free_port)
token_sha=$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)
cat > "$tmp/cluster.yaml" <<EOF
cluster: {name: bench, write_tokens_sha256: ["$token_sha"]}
node:
  threads: $NODE_THREADS
  store: {driver: lmdb, path: "$tmp/store", map_size: 2GiB}
  cache: {enabled: false}
  limits: {post_body: 1MiB, asset: 10MiB}
nodes: [{name: bench1, addr: "127.0.0.1:$node_port"}]
log: {level: warn}
EOF
"$node_bin" --config "$tmp/cluster.yaml" --name bench1 2>"$tmp/node.log" &
node_pid=$!
wait_http "http://127.0.0.1:$node_port/readyz"

# ---- seed through the API (8 keep-alive clients), keep the ids
echo "seeding $NPOSTS posts..." >&2
python3 - "$node_port" "$TOKEN" "$NPOSTS" "$tmp/ids.txt" <<'EOF'
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
nids=$(wc -l < "$tmp/ids.txt")
sample_id=$(head -1 "$tmp/ids.txt")
post_size=$(curl -s "http://127.0.0.1:$node_port/posts/$sample_id" | wc -c)

# ---- nginx: return 200 with a body of the same size
nginx_port=$(free_port)
mkdir -p "$tmp/nginx/logs"
body=$(head -c "$post_size" /dev/zero | tr '\0' 'x')
cat > "$tmp/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
error_log $tmp/nginx/logs/error.log warn;
pid $tmp/nginx/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$nginx_port;
        default_type application/json;
        location / { return 200 '$body'; }
    }
}
EOF
"$nginx_bin" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" 2>"$tmp/nginx/stderr" &
nginx_pid=$!
wait_http "http://127.0.0.1:$nginx_port/"

export BENCH_IDS="$tmp/ids.txt" BENCH_TOKEN="$TOKEN"

# run <label> <pid> <url> [lua]: one wrk run; prints a table row and the µs/req
declare -A results
run() {
    local label=$1 pid=$2 url=$3 lua=${4:-}
    local before after out reqs rps p50 p99 us
    local args=(-t1 "-c$CONNS" "-d$DURATION" --latency)
    [[ -n "$lua" ]] && args+=(-s "$here/lua/$lua")
    before=$(cpu_ticks "$pid")
    out=$(wrk "${args[@]}" "$url")
    after=$(cpu_ticks "$pid")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    us=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$reqs" \
        'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
    if grep -q "Non-2xx" <<<"$out"; then
        echo "warning: $label: $(grep Non-2xx <<<"$out")" >&2
    fi
    results[$label]=$us
    printf '| %s | %s | %s | %s | %s |' "$label" "$rps" "$p50" "$p99" "$us"
}

nginx_url="http://127.0.0.1:$nginx_port/"
node_url="http://127.0.0.1:$node_port"

echo
echo "blog-node $("$node_bin" --version | awk '{print $2}'), $nids posts of $post_size bytes," \
     "node.threads=$NODE_THREADS, wrk -t1 -c$CONNS -d$DURATION, $(nproc) CPUs, $(date -u +%FT%TZ)"
echo
echo "| workload | req/s | p50 | p99 | CPU µs/req | ratio to nginx |"
echo "|---|---:|---:|---:|---:|---:|"
for round in $(seq 1 "$ROUNDS"); do
    run "nginx return 200 ($post_size B)" "$nginx_pid" "$nginx_url"
    echo " — |"
    ref=${results["nginx return 200 ($post_size B)"]}
    for w in "GET /posts/{id} random|$node_url/posts/x|get_random.lua" \
             "GET /posts?limit=20|$node_url/posts?limit=20|" \
             "95% GET / 5% PUT|$node_url/posts/x|mix.lua" \
             "POST /posts|$node_url/posts|post.lua"; do
        IFS='|' read -r label url lua <<<"$w"
        [[ -n "$ONLY" && ! "$label" =~ $ONLY ]] && continue
        run "$label" "$node_pid" "$url" "$lua"
        awk -v a="${results[$label]}" -v b="$ref" 'BEGIN { printf " %.2f× |\n", a / b }'
    done
done
echo
echo "node peak RSS: $(awk '/VmHWM/ {print $2, $3}' /proc/$node_pid/status)"
