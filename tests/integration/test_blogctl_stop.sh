#!/usr/bin/env bash
# Stopping `blogctl up` when a child ignores SIGTERM: one SIGTERM waits the bounded 10 s,
# then SIGKILLs it and still exits 0 with nothing left; a second SIGTERM during the wait
# kills what is left at once. The nodes are stand-ins (python) that answer every GET with
# 200 and ignore SIGTERM; blogctl is copied next to them so it finds them as its blog-node.
set -euo pipefail
BLOGCTL=${BLOGCTL_BIN:?BLOGCTL_BIN not set}
SRC=${BLOG_SOURCE_DIR:?BLOG_SOURCE_DIR not set}
tmp=$(mktemp -d /tmp/test_blogctl_stop.XXXXXX)
up_pid=
children=
cleanup() {
    if [ -n "$up_pid" ] && kill -0 "$up_pid" 2>/dev/null; then
        kill -KILL "$up_pid" 2>/dev/null || true
    fi
    for p in $children; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    echo "--- blogctl stderr (last 60 lines)" >&2; tail -n 60 "$tmp/up.err" >&2 || true
    exit 1
}

. "$SRC/tests/integration/demo_config.sh"
cfg=$tmp/cluster.yaml
demo_config "$SRC/examples/local.yaml" "$cfg" "$tmp/data"

mkdir -p "$tmp/bin/ctl" "$tmp/bin/node" "$tmp/bin/lb"
cp "$BLOGCTL" "$tmp/bin/ctl/blogctl"
ln -s "$(cd "$(dirname "$BLOGCTL")/../lb" && pwd)/blog-lb" "$tmp/bin/lb/blog-lb"
cat >"$tmp/bin/node/blog-node" <<'PY'
#!/usr/bin/env python3
import http.server, re, signal, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
name = sys.argv[sys.argv.index("--name") + 1]
cfg = open(sys.argv[sys.argv.index("--config") + 1]).read()
host, port = re.search(r'name: %s, addr: "([\d.]+):(\d+)"' % re.escape(name), cfg).groups()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b'{"posts":[],"next_cursor":null}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Blog-Node", name)
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
print("stand-in node %s on %s:%s, ignoring SIGTERM" % (name, host, port), flush=True)
http.server.ThreadingHTTPServer((host, int(port)), H).serve_forever()
PY
chmod +x "$tmp/bin/node/blog-node"

# start_up: runs up and waits for the readiness line
start_up() {
    : >"$tmp/up.err"
    "$tmp/bin/ctl/blogctl" -c "$cfg" up --no-seed >"$tmp/up.out" 2>"$tmp/up.err" &
    up_pid=$!
    for _ in $(seq 300); do
        grep -q '^blogscale up: ' "$tmp/up.out" && break
        kill -0 "$up_pid" 2>/dev/null || fail "blogctl up exited before it was ready"
        sleep 0.1
    done
    grep -q '^blogscale up: ' "$tmp/up.out" || fail "no readiness line within 30 s"
    children=$(cat /proc/"$up_pid"/task/*/children 2>/dev/null || true)
}

# wait_exit SECONDS: sets rc and elapsed (s) once blogctl exits
wait_exit() {
    local t0=$SECONDS
    rc=
    for _ in $(seq $(($1 * 10))); do
        if ! kill -0 "$up_pid" 2>/dev/null; then
            set +e; wait "$up_pid"; rc=$?; set -e
            break
        fi
        sleep 0.1
    done
    elapsed=$((SECONDS - t0))
    [ -n "$rc" ] || fail "blogctl still running $1 s after the signal"
    up_pid=
}

no_leftovers() {
    for p in $children; do
        if kill -0 "$p" 2>/dev/null; then
            fail "$1: child $p ($(cat /proc/"$p"/comm 2>/dev/null)) still running"
        fi
    done
}

# 1. one SIGTERM: the nodes ignore it, so after 10 s they get SIGKILL; exit 0
start_up
kill -TERM "$up_pid"
wait_exit 25
[ "$rc" = 0 ] || fail "one SIGTERM: exit $rc, want 0"
[ "$elapsed" -ge 9 ] || fail "one SIGTERM: blogctl did not wait for the nodes ($elapsed s)"
grep -q "n1 (pid [0-9]*) did not stop within 10 s: SIGKILL" "$tmp/up.err" || fail "no SIGKILL notice"
grep -q "n1 (pid [0-9]*) stopped: killed by signal 9" "$tmp/up.err" || fail "no stop line for n1"
grep -q "redis (pid [0-9]*) stopped: exited with code 0" "$tmp/up.err" || fail "redis not stopped"
no_leftovers "one SIGTERM"

# 2. a second SIGTERM during the wait: everything is killed at once
start_up
kill -TERM "$up_pid"
sleep 1
kill -TERM "$up_pid"
wait_exit 20
[ "$rc" = 0 ] || fail "two SIGTERMs: exit $rc, want 0"
# without the second signal the nodes alone would take 10 s
[ "$elapsed" -lt 8 ] || fail "two SIGTERMs: blogctl still waited ($elapsed s)"
grep -q "second signal: killing what is left" "$tmp/up.err" || fail "no second-signal notice"
no_leftovers "two SIGTERMs"
echo ok
