#!/usr/bin/env bash
# blog-lb against HAProxy on the same three nginx backends, same machine, same run
# (not a test: a measurement; see docs/BENCHMARKS.md, section "blog-lb").
#
#   tests/bench/lb-bench.sh [wrk]        wrk -t1 -c64 -d10s, ROUNDS alternating runs
#                                        (SCENARIOS="rr hash tls tlsnew tcp" by default)
#   tests/bench/lb-bench.sh callgrind    user-space instructions per proxied request
#
# Environment: BLOG_LB_BIN (default build/lb/blog-lb), ROUNDS (2), DURATION (10s),
# CONNS (64), IDS (10000), REQUESTS (20000, callgrind mode), RATE (20000, tcprate), KEEP=1 keeps the temp dir,
# SCENARIOS (which of rr hash tls tlsnew tcp), HANDSHAKES (4000, tlsnew).
#
# Scenarios, one LB worker / thread each, keep-alive on both sides:
#   rr    GET /posts            blog-lb: p2c (balance.other)   HAProxy: roundrobin
#   hash  GET /posts/<id>       blog-lb: Maglev by id          HAProxy: balance uri +
#         (IDS random ids)                                          hash-type consistent
#   tls   GET /posts over TLS 1.3 keep-alive (wrk https), same ECDSA P-256 certificate
#         on both (blog-lb tls:, HAProxy bind ... ssl crt ... alpn http/1.1)
#   tlsnew GET /posts with a new connection and a full TLS handshake per request
#         (ab -n HANDSHAKES -c 16 https://..., no keep-alive, no session reuse)
#   tcp   GET /posts through an L4 listener (blog-lb mode: tcp, maglev on the client
#         address; HAProxy mode tcp, balance source), keep-alive end to end
#   tcprate (opt-in, not in the default list) the tcp scenario at a FIXED offered rate
#         (RATE req/s, default 20000; tests/bench/openloop.c, CONNS keep-alive
#         connections, open loop): both proxies do the same work per second, so the CPU
#         per request compares equal batching (closed-loop wrk lets the faster proxy run
#         more requests per second with fewer per wake-up, which costs it per request)
# Figures: requests/s, p50/p99 latency (wrk), and the LB process's CPU time per request
# (utime + stime from /proc/PID/stat before and after the run, divided by the requests).
set -euo pipefail

MODE=${1:-wrk}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LB_BIN=$(realpath "${BLOG_LB_BIN:-$ROOT/build/lb/blog-lb}")
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
IDS=${IDS:-10000}
SCENARIOS=${SCENARIOS:-rr hash tls tlsnew tcp}
HANDSHAKES=${HANDSHAKES:-4000}
REQUESTS=${REQUESTS:-20000}
RATE=${RATE:-20000}
HAPROXY=${HAPROXY:-haproxy}
NGINX=${NGINX:-nginx}

for t in "$LB_BIN" ; do
    [ -x "$t" ] || { echo "lb-bench: $t not found (build blog-lb first or set BLOG_LB_BIN)" >&2; exit 1; }
done
for t in "$HAPROXY" "$NGINX" wrk; do
    command -v "$t" >/dev/null || { echo "lb-bench: $t missing (scripts/install-deps.sh --test)" >&2; exit 1; }
done

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

TMP=$(mktemp -d /tmp/lb-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.2
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    [ "${KEEP:-0}" = 1 ] && echo "kept $TMP" || rm -rf "$TMP"
}
trap cleanup EXIT

wait_port() {   # wait_port PORT [TRIES of 50 ms]: until 127.0.0.1:PORT accepts
    for _ in $(seq 1 "${2:-100}"); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "lb-bench: nothing listens on port $1" >&2
    return 1
}

# ---- backends: three nginx, `return 200` with a fixed 1 KiB JSON body -------------------
BODY=$(python3 -c 'import json; s=json.dumps({"id":"65a1b2c3d4e5f60718293a4b","title":"bench","author":"lb-bench","tags":["a","b"],"body":""}); print(s[:-2] + "x"*(1024-len(s)) + "\"}")')
[ ${#BODY} -eq 1024 ] || { echo "lb-bench: body is ${#BODY} bytes" >&2; exit 1; }
BE=()
for i in 1 2 3; do
    port=$(free_port)
    BE+=("$port")
    mkdir -p "$TMP/nginx$i"
    cat >"$TMP/nginx$i/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/nginx$i/nginx.pid;
error_log $TMP/nginx$i/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx$i;
    proxy_temp_path $TMP/nginx$i;
    fastcgi_temp_path $TMP/nginx$i;
    uwsgi_temp_path $TMP/nginx$i;
    scgi_temp_path $TMP/nginx$i;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$port;
        default_type application/json;
        location / { return 200 '$BODY'; }
    }
}
EOF
    "$NGINX" -p "$TMP/nginx$i" -c "$TMP/nginx$i/nginx.conf" &
    PIDS+=($!)
done
for p in "${BE[@]}"; do wait_port "$p"; done

# ---- certificate (ECDSA P-256, self-signed), the same for both proxies -----------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$TMP/lb.key" -out "$TMP/lb.crt" -subj "/CN=bench.local" 2>/dev/null
cat "$TMP/lb.crt" "$TMP/lb.key" >"$TMP/haproxy.pem"

# ---- blog-lb ---------------------------------------------------------------------------
LB_PORT=$(free_port)
LB_TLS=$(free_port)
LB_TCP=$(free_port)
LB_ADMIN=$(free_port)
cat >"$TMP/lb.yaml" <<EOF
cluster: {name: bench}
node: {cache: {enabled: false}}
lb:
  listeners:
    - {bind: "127.0.0.1:$LB_PORT", mode: http}
    - {bind: "127.0.0.1:$LB_TLS", mode: http, tls: {cert: "$TMP/lb.crt", key: "$TMP/lb.key"}}
    - {bind: "127.0.0.1:$LB_TCP", mode: tcp, balance: maglev}
  admin: {bind: "127.0.0.1:$LB_ADMIN", metrics_public: true}
  workers: 1
  access_log: false
  health: {path: /readyz, interval: 2s, timeout: 1s}
  balance: {by_id: maglev, other: p2c}
  limits: {idle_timeout: 300s}
nodes:
  - {name: n1, addr: "127.0.0.1:${BE[0]}"}
  - {name: n2, addr: "127.0.0.1:${BE[1]}"}
  - {name: n3, addr: "127.0.0.1:${BE[2]}"}
log: {level: warn}
EOF

# ---- HAProxy 2.6 -----------------------------------------------------------------------
HA_PORT=$(free_port)
HA_PORT2=$(free_port)
HA_TLS=$(free_port)
HA_TCP=$(free_port)
cat >"$TMP/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 8000
    ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 1s
    timeout client 300s
    timeout server 30s
    timeout http-keep-alive 300s
frontend rr
    bind 127.0.0.1:$HA_PORT
    default_backend be_rr
frontend hash
    bind 127.0.0.1:$HA_PORT2
    default_backend be_hash
frontend tls
    bind 127.0.0.1:$HA_TLS ssl crt $TMP/haproxy.pem alpn http/1.1
    default_backend be_rr
frontend l4
    mode tcp
    bind 127.0.0.1:$HA_TCP
    default_backend be_tcp
backend be_tcp
    mode tcp
    balance source
    hash-type consistent
    server n1 127.0.0.1:${BE[0]}
    server n2 127.0.0.1:${BE[1]}
    server n3 127.0.0.1:${BE[2]}
backend be_rr
    balance roundrobin
    server n1 127.0.0.1:${BE[0]}
    server n2 127.0.0.1:${BE[1]}
    server n3 127.0.0.1:${BE[2]}
backend be_hash
    balance uri
    hash-type consistent
    server n1 127.0.0.1:${BE[0]}
    server n2 127.0.0.1:${BE[1]}
    server n3 127.0.0.1:${BE[2]}
EOF

cat >"$TMP/ids.lua" <<EOF
-- GET /posts/<id> over $IDS ids, 24 hex digits each
local ids = {}
math.randomseed(42)
for i = 1, $IDS do ids[i] = string.format("%08x%016x", 0x65000000 + i, i * 2654435761) end
request = function()
    return wrk.format("GET", "/posts/" .. ids[math.random(1, $IDS)])
end
EOF

cpu_ticks() {   # utime + stime of PID (all threads), in clock ticks
    awk '{print $14 + $15}' "/proc/$1/stat"
}

start_lb() {
    "$LB_BIN" --config "$TMP/lb.yaml" 2>>"$TMP/lb.log" &
    LB_PID=$!
    PIDS+=("$LB_PID")
    wait_port "$LB_PORT"
    wait_port "$LB_ADMIN"
    sleep 0.3
}

start_haproxy() {
    "$HAPROXY" -f "$TMP/haproxy.cfg" -db 2>>"$TMP/haproxy.log" &
    HA_PID=$!
    PIDS+=("$HA_PID")
    wait_port "$HA_PORT"
}

# run_wrk NAME PID URL [lua]  -> appends "NAME rps p50_ms p99_ms cpu_us_per_req" to results
run_wrk() {
    local name=$1 pid=$2 url=$3 lua=${4:-}
    local t0 t1 out rps p50 p99 reqs hz
    hz=$(getconf CLK_TCK)
    # short warm-up: connections to the backends, caches
    wrk -t1 -c"$CONNS" -d1s ${lua:+-s "$lua"} "$url" >/dev/null 2>&1 || true
    t0=$(cpu_ticks "$pid")
    out=$(wrk -t1 -c"$CONNS" -d"$DURATION" --latency ${lua:+-s "$lua"} "$url")
    t1=$(cpu_ticks "$pid")
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    if echo "$out" | grep -q "Non-2xx"; then
        echo "lb-bench: $name: non-2xx answers:" >&2
        echo "$out" >&2
        exit 1
    fi
    local cpu
    cpu=$(awk -v a="$t0" -v b="$t1" -v n="$reqs" -v hz="$hz" 'BEGIN {printf "%.2f", (b - a) / hz * 1e6 / n}')
    printf "%-14s %10s %9s %9s %10s\n" "$name" "$rps" "$p50" "$p99" "$cpu" | tee -a "$TMP/results"
}

# run_ab NAME PID URL -> new connection + full TLS handshake per request (ab without -k)
run_ab() {
    local name=$1 pid=$2 url=$3
    local t0 t1 out rps p50 p99 reqs hz cpu
    hz=$(getconf CLK_TCK)
    ab -q -n 500 -c 16 "$url" >/dev/null 2>&1 || true
    t0=$(cpu_ticks "$pid")
    out=$(ab -q -n "$HANDSHAKES" -c 16 "$url" 2>&1)
    t1=$(cpu_ticks "$pid")
    reqs=$(echo "$out" | awk '/^Complete requests:/ {print $3}')
    if ! echo "$out" | grep -q '^Failed requests: *0$' || echo "$out" | grep -q 'Non-2xx'; then
        echo "lb-bench: $name: failed requests:" >&2
        echo "$out" >&2
        exit 1
    fi
    rps=$(echo "$out" | awk '/^Requests per second:/ {print $4}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2 "ms"}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2 "ms"}')
    cpu=$(awk -v a="$t0" -v b="$t1" -v n="$reqs" -v hz="$hz" 'BEGIN {printf "%.2f", (b - a) / hz * 1e6 / n}')
    printf "%-14s %10s %9s %9s %10s\n" "$name" "$rps" "$p50" "$p99" "$cpu" | tee -a "$TMP/results"
}

# run_openloop NAME PID PORT -> fixed rate (RATE req/s) for DURATION, same result columns
run_openloop() {
    local name=$1 pid=$2 port=$3
    local t0 t1 out reqs rps p50 p99 hz cpu secs
    hz=$(getconf CLK_TCK)
    secs=${DURATION%s}
    [ -x "$TMP/openloop" ] || cc -O2 -o "$TMP/openloop" "$HERE/openloop.c"
    [ -f "$TMP/ids.txt" ] || awk -v n="$IDS" 'BEGIN {for (i = 1; i <= n; i++) printf "%08x%016x\n", 1694498816 + i, i}' >"$TMP/ids.txt"
    "$TMP/openloop" 127.0.0.1 "$port" "$RATE" 1 "$CONNS" "$TMP/ids.txt" 1 >/dev/null || true
    t0=$(cpu_ticks "$pid")
    out=$("$TMP/openloop" 127.0.0.1 "$port" "$RATE" "$secs" "$CONNS" "$TMP/ids.txt" 7)
    t1=$(cpu_ticks "$pid")
    reqs=$(echo "$out" | sed -n 's/.* completed=\([0-9]*\).*/\1/p')
    rps=$(echo "$out" | sed -n 's/.* achieved=\([0-9.]*\).*/\1/p')
    p50=$(echo "$out" | sed -n 's/.* p50=\([0-9.]*\).*/\1us/p')
    p99=$(echo "$out" | sed -n 's/.* p99=\([0-9.]*\).*/\1us/p')
    if ! echo "$out" | grep -q ' errors=0 non2xx=0 '; then
        echo "lb-bench: $name: errors: $out" >&2
        exit 1
    fi
    cpu=$(awk -v a="$t0" -v b="$t1" -v n="$reqs" -v hz="$hz" 'BEGIN {printf "%.2f", (b - a) / hz * 1e6 / n}')
    printf "%-14s %10s %9s %9s %10s\n" "$name" "$rps" "$p50" "$p99" "$cpu" | tee -a "$TMP/results"
}

to_ms() {   # wrk latency "512.00us" / "1.20ms" / "1.1s" -> ms
    awk -v v="$1" 'BEGIN { if (v ~ /us$/) {sub(/us$/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v} else if (v ~ /s$/) {sub(/s$/,"",v); print v*1000} else print v }'
}

if [ "$MODE" = callgrind ]; then
    command -v valgrind >/dev/null || { echo "lb-bench: valgrind missing" >&2; exit 1; }
    command -v ab >/dev/null || { echo "lb-bench: ab missing (apache2-utils)" >&2; exit 1; }
    cd "$TMP"
    valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.out.%p" \
        "$LB_BIN" --config "$TMP/lb.yaml" 2>>"$TMP/lb.log" &
    VG_PID=$!
    PIDS+=("$VG_PID")
    wait_port "$LB_PORT" 600
    sleep 1
    for path in "/posts" "/posts/65a1b2c3d4e5f60718293a4b"; do
        ab -q -k -n 2000 -c 16 "http://127.0.0.1:$LB_PORT$path" >/dev/null   # warm-up
        callgrind_control -z "$VG_PID" >/dev/null
        ab -q -k -n "$REQUESTS" -c 16 "http://127.0.0.1:$LB_PORT$path" >"$TMP/ab.out"
        grep -E "Failed requests|Non-2xx" "$TMP/ab.out" || true
        callgrind_control -d "$VG_PID" >/dev/null
        # wait for the dump to be complete (its last line is "totals: N")
        dump=""
        for _ in $(seq 1 300); do
            dump=$(ls -t "$TMP"/callgrind.out.*.* 2>/dev/null | head -1)
            [ -n "$dump" ] && grep -q '^totals:' "$dump" && break
            sleep 0.1
        done
        ir=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ && !d {gsub(",","",$1); print $1; d = 1}')
        printf "blog-lb %-36s %s Ir / %s requests = %s instructions per request\n" "$path" \
            "$ir" "$REQUESTS" "$(awk -v a="$ir" -v n="$REQUESTS" 'BEGIN {printf "%.0f", a / n}')"
        callgrind_annotate "$dump" 2>/dev/null | sed -n '1,60p' >"$TMP/annotate$(echo "$path" | tr / _).txt"
        mv "$dump" "$TMP/callgrind$(echo "$path" | tr / _).out"
    done
    echo "(callgrind_annotate output: run with KEEP=1 and look in $TMP)"
    exit 0
fi

start_lb
start_haproxy
: >"$TMP/results"
printf "%-14s %10s %9s %9s %10s\n" "run" "req/s" "p50" "p99" "CPU us/req"
has() { [[ " $SCENARIOS " == *" $1 "* ]]; }
for r in $(seq 1 "$ROUNDS"); do
    if has rr; then
        run_wrk "blog-lb/rr" "$LB_PID" "http://127.0.0.1:$LB_PORT/posts"
        run_wrk "haproxy/rr" "$HA_PID" "http://127.0.0.1:$HA_PORT/posts"
    fi
    if has hash; then
        run_wrk "blog-lb/hash" "$LB_PID" "http://127.0.0.1:$LB_PORT/" "$TMP/ids.lua"
        run_wrk "haproxy/hash" "$HA_PID" "http://127.0.0.1:$HA_PORT2/" "$TMP/ids.lua"
    fi
    if has tls; then
        run_wrk "blog-lb/tls" "$LB_PID" "https://127.0.0.1:$LB_TLS/posts"
        run_wrk "haproxy/tls" "$HA_PID" "https://127.0.0.1:$HA_TLS/posts"
    fi
    if has tlsnew; then
        run_ab "blog-lb/tlsnew" "$LB_PID" "https://127.0.0.1:$LB_TLS/posts"
        run_ab "haproxy/tlsnew" "$HA_PID" "https://127.0.0.1:$HA_TLS/posts"
    fi
    if has tcp; then
        run_wrk "blog-lb/tcp" "$LB_PID" "http://127.0.0.1:$LB_TCP/posts"
        run_wrk "haproxy/tcp" "$HA_PID" "http://127.0.0.1:$HA_TCP/posts"
    fi
    if has tcprate; then
        run_openloop "blog-lb/tcprate" "$LB_PID" "$LB_TCP"
        run_openloop "haproxy/tcprate" "$HA_PID" "$HA_TCP"
    fi
done

echo
echo "medians over $ROUNDS rounds (ratio = blog-lb / HAProxy; CPU ratio target <= 0.8 for"
echo "rr/hash, <= 0.9 for tls (keep-alive) and tcp):"
for sc in $SCENARIOS; do
    med() {   # med NAME COLUMN
        local col=$2
        awk -v n="$1" -v c="$col" '$1 == n {print $c}' "$TMP/results" | while read -r v; do
            if [ "$col" -eq 3 ] || [ "$col" -eq 4 ]; then to_ms "$v"; else echo "$v"; fi
        done | sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
    }
    lr=$(med "blog-lb/$sc" 2); hr=$(med "haproxy/$sc" 2)
    lc=$(med "blog-lb/$sc" 5); hc=$(med "haproxy/$sc" 5)
    l50=$(med "blog-lb/$sc" 3); h50=$(med "haproxy/$sc" 3)
    l99=$(med "blog-lb/$sc" 4); h99=$(med "haproxy/$sc" 4)
    awk -v sc="$sc" -v lr="$lr" -v hr="$hr" -v lc="$lc" -v hc="$hc" -v l50="$l50" -v h50="$h50" \
        -v l99="$l99" -v h99="$h99" 'BEGIN {
        printf "%-5s req/s %8.0f vs %8.0f (x%.2f)  p50 %.3f vs %.3f ms  p99 %.3f vs %.3f ms  CPU us/req %.2f vs %.2f (x%.2f)\n",
            sc, lr, hr, lr / hr, l50, h50, l99, h99, lc, hc, lc / hc }'
done
