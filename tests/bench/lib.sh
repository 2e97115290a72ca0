# Shared functions of the benchmark scripts (sourced, bash). Used by tests/bench/run-all.
#
#   bl_spawn NAME CMD...        start CMD in the background, log to $BL_TMP/NAME.log, record
#                               its PID (bl_cleanup kills it); sets BL_PID
#   bl_cleanup                  SIGTERM then SIGKILL every recorded PID; removes $BL_TMP
#   bl_free_port                a free TCP port on 127.0.0.1
#   bl_wait_port PORT [TRIES]   until 127.0.0.1:PORT accepts (50 ms steps)
#   bl_wait_http URL [TRIES]    until URL answers 2xx
#   bl_cpu_ticks PID...         utime+stime of the PIDs (all threads), clock ticks, summed
#   bl_metric PORT NAME [LABELS] one sample of a Prometheus text endpoint (0 when absent)
#   bl_wrk JSONFIELDS MEASURED BACKENDS URL [WRK ARGS...]
#                               one wrk run with tests/bench/zipf.lua; appends one JSON line
#                               to $BL_RESULTS (see the function)
#
# Every figure is measured, never assumed: CPU time comes from /proc/PID/stat before and
# after the run, wrk's own CPU from bash's `time`, latencies from wrk's histogram.

BL_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BL_CLK_TCK=$(getconf CLK_TCK)
BL_PIDS=()
BL_DURATION=${BL_DURATION:-5}
BL_WARMUP=${BL_WARMUP:-1}
BL_CONNS=${BL_CONNS:-64}

bl_log() {
    printf '[%s %5ds] %s\n' "$(date -u +%H:%M:%S)" "$((SECONDS))" "$*" >&2
}

bl_die() {
    echo "run-all: $*" >&2
    exit 1
}

bl_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

bl_spawn() {
    local name=$1
    shift
    "$@" >>"$BL_TMP/$name.log" 2>&1 &
    BL_PID=$!
    BL_PIDS+=("$BL_PID")
}

bl_stop() {   # bl_stop PID...: SIGTERM, wait up to 3 s, SIGKILL
    local p
    for p in "$@"; do kill "$p" 2>/dev/null || true; done
    for _ in $(seq 1 60); do
        local alive=0
        for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.05
    done
    for p in "$@"; do
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    local keep=() q s
    for q in "${BL_PIDS[@]}"; do
        s=0
        for p in "$@"; do [ "$p" = "$q" ] && s=1; done
        [ "$s" = 0 ] && keep+=("$q")
    done
    BL_PIDS=("${keep[@]}")
}

bl_cleanup() {
    trap - EXIT INT TERM
    if [ "${#BL_PIDS[@]}" -gt 0 ]; then
        bl_stop "${BL_PIDS[@]}"
    fi
    if [ -n "${BL_TMP:-}" ] && [ -d "$BL_TMP" ]; then
        if [ "${KEEP:-0}" = 1 ]; then echo "kept $BL_TMP" >&2; else rm -rf "$BL_TMP"; fi
    fi
}

bl_wait_port() {
    for _ in $(seq 1 "${2:-200}"); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    bl_die "nothing listens on 127.0.0.1:$1 (logs in $BL_TMP)"
}

bl_wait_http() {
    for _ in $(seq 1 "${2:-300}"); do
        curl -fs -o /dev/null "$1" && return 0
        sleep 0.05
    done
    bl_die "no answer from $1 (logs in $BL_TMP)"
}

bl_cpu_ticks() {
    local t=0 p v
    for p in "$@"; do
        v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) || bl_die "process $p is gone"
        t=$((t + v))
    done
    echo "$t"
}

bl_metric() {   # bl_metric PORT NAME [LABELS]: e.g. bl_metric 9101 blog_node_store_op_duration_seconds_count '{op="get"}'
    curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2${3:-}" '$1 == n {v = $2} END {print v + 0}'
}

# bl_wrk FIELDS "MEASURED PIDS" "BACKEND PIDS" URL [extra wrk args]
#   FIELDS: a JSON fragment naming the run, e.g. '"scenario":"l7_rr","target":"blog-lb","round":1'
#   The load is tests/bench/zipf.lua, configured by the BENCH_* environment (see that file).
#   Appends to $BL_RESULTS one JSON line: FIELDS + rps, requests, duration_s, p50/p99/p999
#   in µs, non2xx, errors (socket), cpu_us (measured processes' CPU µs per request),
#   backend_cpu_us (same for the backends, 0 when none), wrk_cpu_us and wrk_cpu_pct (wrk's
#   own user+sys per request, and as a share of one core: near 100 = the client saturated).
bl_wrk() {
    local fields=$1 measured=$2 backends=$3 url=$4
    shift 4
    local out="$BL_TMP/wrk.out" tf="$BL_TMP/wrk.time"
    if [ "$BL_WARMUP" != 0 ]; then
        wrk -t1 -c"$BL_CONNS" -d"${BL_WARMUP}s" -s "$BL_HERE/zipf.lua" "$@" "$url" >/dev/null 2>&1 || true
    fi
    local m0 b0=0 m1 b1=0
    # shellcheck disable=SC2086
    m0=$(bl_cpu_ticks $measured)
    # shellcheck disable=SC2086
    [ -n "$backends" ] && b0=$(bl_cpu_ticks $backends)
    local TIMEFORMAT='%3U %3S'
    { time wrk -t1 -c"$BL_CONNS" -d"${BL_DURATION}s" -s "$BL_HERE/zipf.lua" "$@" "$url" >"$out" 2>&1 ; } 2>"$tf" \
        || { cat "$out" >&2; bl_die "wrk failed: $fields"; }
    # shellcheck disable=SC2086
    m1=$(bl_cpu_ticks $measured)
    # shellcheck disable=SC2086
    [ -n "$backends" ] && b1=$(bl_cpu_ticks $backends)
    local res
    res=$(grep '^RESULT ' "$out") || { cat "$out" >&2; bl_die "no RESULT line from wrk: $fields"; }
    python3 - "$fields" "$res" "$m0" "$m1" "$b0" "$b1" "$(cat "$tf")" "$BL_CLK_TCK" "$BL_RESULTS" <<'EOF'
import json, sys
fields, res, m0, m1, b0, b1, wt, hz, path = sys.argv[1:]
r = dict(kv.split("=") for kv in res.split()[1:])
n = int(r["requests"])
dur = int(r["duration_us"]) / 1e6
hz = float(hz)
u, s = (float(x) for x in wt.split())
d = json.loads("{" + fields + "}")
d.update({
    "requests": n, "duration_s": round(dur, 3), "rps": round(n / dur, 1),
    "p50_us": int(r["p50"]), "p99_us": int(r["p99"]), "p999_us": int(r["p999"]),
    "non2xx": int(r["non2xx"]), "errors": int(r["errors"]),
    "cpu_us": round((int(m1) - int(m0)) / hz * 1e6 / max(n, 1), 2),
    "backend_cpu_us": round((int(b1) - int(b0)) / hz * 1e6 / max(n, 1), 2),
    "wrk_cpu_us": round((u + s) * 1e6 / max(n, 1), 2),
    "wrk_cpu_pct": round((u + s) / dur * 100, 1),
})
open(path, "a").write(json.dumps(d) + "\n")
print("%-44s %9.0f req/s  p50 %6d  p99 %7d  p99.9 %7d us  cpu %6.2f  backends %6.2f  wrk %5.1f%%%s" % (
    " ".join(str(v) for v in json.loads("{" + fields + "}").values()), d["rps"], d["p50_us"],
    d["p99_us"], d["p999_us"], d["cpu_us"], d["backend_cpu_us"], d["wrk_cpu_pct"],
    ("  NON-2XX %d" % d["non2xx"]) if d["non2xx"] else "") + (("  ERR %d" % d["errors"]) if d["errors"] else ""),
      file=sys.stderr)
EOF
}
