#!/usr/bin/env bash
# blog-node hot-cache benchmark (not a test). Starts a redis-server and two blog-nodes (cache
# on, one LMDB), seeds NPOSTS posts of ~1 KiB through the API, warms n1's cache, then runs
# wrk -t1 against n1 (GET /posts/{id} over random ids: every request a cache hit) and, in the
# same run, against Debian's nginx answering `return 200` with a body of the same size (the
# in-run reference; compare ratios only). Then 2,000 writes on n2 and n1's invalidation
# delay histogram (receive time - publish timestamp).
#
# Reports req/s, p50/p99, CPU µs/request (utime+stime from /proc/PID/stat around each run
# divided by the requests wrk completed), the hit ratio of the run, delay p50/p99.
#
# usage: tests/bench/cache-bench.sh [BUILD_DIR]      (default build-cache, then build)
# env:   DURATION=10s CONNS=64 NODE_THREADS=auto NPOSTS=10000 ROUNDS=1 NWRITES=2000
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-}
if [[ -z "$build" ]]; then
    for b in "$root/build-cache" "$root/build"; do
        [[ -x "$b/node/blog-node" ]] && build=$b && break
    done
fi
node_bin=${BLOG_NODE_BIN:-$build/node/blog-node}
[[ -x "$node_bin" ]] || { echo "no blog-node binary (build first or pass BUILD_DIR)" >&2; exit 1; }
for c in wrk redis-server curl python3; do
    command -v "$c" >/dev/null || { echo "$c is not installed" >&2; exit 1; }
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x "$nginx_bin" ]] || { echo "nginx is not installed" >&2; exit 1; }

DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
NODE_THREADS=${NODE_THREADS:-auto}
NPOSTS=${NPOSTS:-10000}
ROUNDS=${ROUNDS:-1}
NWRITES=${NWRITES:-2000}
TOKEN=bench-token
CLK_TCK=$(getconf CLK_TCK)

tmp=$(mktemp -d /tmp/cache-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
    done
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

metric() {  # metric PORT NAME
    curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n {print $2}'
}

# ---- redis + two nodes
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
    >"$tmp/redis.log" 2>&1 &
pids+=($!)
n1_port=$(free_port)
n2_port=$(free_port)
token_sha=$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)
cat > "$tmp/cluster.yaml" <<EOF
cluster: {name: bench, redis: "redis://127.0.0.1:$redis_port", write_tokens_sha256: ["$token_sha"]}
node:
  threads: $NODE_THREADS
  store: {driver: lmdb, path: "$tmp/store", map_size: 2GiB}
  cache: {size: 256MiB, ttl: 300s, negative_ttl: 2s}
  limits: {post_body: 1MiB, asset: 10MiB}
nodes: [{name: n1, addr: "127.0.0.1:$n1_port"}, {name: n2, addr: "127.0.0.1:$n2_port"}]
log: {level: warn}
EOF
sleep 0.2
"$node_bin" --config "$tmp/cluster.yaml" --name n1 2>"$tmp/n1.log" &
n1_pid=$!
pids+=($n1_pid)
"$node_bin" --config "$tmp/cluster.yaml" --name n2 2>"$tmp/n2.log" &
pids+=($!)
wait_http "http://127.0.0.1:$n1_port/readyz"
wait_http "http://127.0.0.1:$n2_port/readyz"

# ---- seed through n2 (8 keep-alive clients), keep the ids; then read every id once on n1
echo "seeding $NPOSTS posts..." >&2
python3 - "$n2_port" "$n1_port" "$TOKEN" "$NPOSTS" "$tmp/ids.txt" <<'EOF'
import http.client, json, sys, threading
port, rport, token, n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
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
c = http.client.HTTPConnection("127.0.0.1", rport)
for i in ids:
    c.request("GET", "/posts/" + i)
    c.getresponse().read()
EOF
nids=$(wc -l < "$tmp/ids.txt")
sample_id=$(head -1 "$tmp/ids.txt")
post_size=$(curl -s "http://127.0.0.1:$n1_port/posts/$sample_id" | wc -c)
echo "n1 cache after warm-up: $(metric "$n1_port" blog_node_cache_entries) entries," \
     "$(metric "$n1_port" blog_node_cache_bytes) bytes" >&2

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
pids+=($nginx_pid)
wait_http "http://127.0.0.1:$nginx_port/"

export BENCH_IDS="$tmp/ids.txt" BENCH_TOKEN="$TOKEN"

declare -A results
run() {  # run LABEL PID URL [LUA]
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

echo
echo "blog-node $("$node_bin" --version | awk '{print $2}'), cache on (SIEVE), $nids posts of" \
     "$post_size bytes, node.threads=$NODE_THREADS, wrk -t1 -c$CONNS -d$DURATION, $(nproc) CPUs," \
     "$(date -u +%FT%TZ)"
echo
echo "| workload | req/s | p50 | p99 | CPU µs/req | ratio to nginx |"
echo "|---|---:|---:|---:|---:|---:|"
for round in $(seq 1 "$ROUNDS"); do
    run "nginx return 200 ($post_size B)" "$nginx_pid" "http://127.0.0.1:$nginx_port/"
    echo " — |"
    ref=${results["nginx return 200 ($post_size B)"]}
    h0=$(metric "$n1_port" blog_node_cache_hits_total)
    m0=$(metric "$n1_port" blog_node_cache_misses_total)
    label="cached GET /posts/{id} random"
    run "$label" "$n1_pid" "http://127.0.0.1:$n1_port/posts/x" get_random.lua
    awk -v a="${results[$label]}" -v b="$ref" 'BEGIN { printf " %.2f× |\n", a / b }'
    h1=$(metric "$n1_port" blog_node_cache_hits_total)
    m1=$(metric "$n1_port" blog_node_cache_misses_total)
    awk -v h=$((h1 - h0)) -v m=$((m1 - m0)) \
        'BEGIN { printf "\nhit ratio during the run: %.4f (%d hits, %d misses)\n\n", h / (h + m), h, m }'
done

# ---- invalidation delay: NWRITES writes on n2, n1's histogram (difference across them)
curl -s "http://127.0.0.1:$n1_port/metrics" | grep '^blog_node_cache_invalidation_delay_seconds' >"$tmp/h0"
python3 - "$n2_port" "$TOKEN" "$NWRITES" "$tmp/ids.txt" <<'EOF'
import http.client, json, sys
port, token, n, idf = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
ids = open(idf).read().split()
c = http.client.HTTPConnection("127.0.0.1", port)
h = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
for i in range(n):
    c.request("PUT", "/posts/" + ids[i % len(ids)], headers=h,
              body=json.dumps({"title": "w%d" % i, "author": "bench", "body": "x" * 900}))
    r = c.getresponse(); r.read()
    if r.status != 200:
        raise SystemExit("write failed: %d" % r.status)
EOF
sleep 0.5
curl -s "http://127.0.0.1:$n1_port/metrics" | grep '^blog_node_cache_invalidation_delay_seconds' >"$tmp/h1"
awk '
    FNR == 1 { f++ }
    { v = (f == 1) ? -$2 : $2 }
    /_bucket/ { match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5);
                if (!(le in idx)) { idx[le] = ++n; b[n] = le } c[idx[le]] += v }
    /_count/ { total += v }
    /_sum/ { sum += v }
    END {
        for (i = 1; i <= n; i++) { if (!p50 && c[i] >= total * 0.5) p50 = b[i]; if (!p99 && c[i] >= total * 0.99) p99 = b[i] }
        printf "invalidation delay on n1 (%d messages, receive - publish): mean %.1f µs, p50 <= %s s, p99 <= %s s\n",
               total, total ? sum / total * 1e6 : 0, p50, p99 }' "$tmp/h0" "$tmp/h1"
echo "n1 peak RSS: $(awk '/VmHWM/ {print $2, $3}' /proc/$n1_pid/status)"
