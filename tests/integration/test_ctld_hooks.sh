#!/usr/bin/env bash
# blog-ctld when a scale-up cannot complete: the LBs' node sets (GET /nodes) are the same
# before and after, and nothing is left running.
#  1. the scale_up hook fails (exit 1): retried with backoff, counted, no change;
#  2. the hook answers a node that never becomes ready: after the bound (hook_timeout)
#     ctld runs scale_down for it, no change;
#  3. a second LB refuses the new node: the first LB gets it removed again (never a
#     half-added node), the node is stopped through scale_down.
source "$(dirname "$0")/ctld_lib.sh"

hook=$tmp/scale-up
cat >"$hook" <<'SH'
#!/bin/sh
echo "scale-up: cannot start a node (test)" >&2
exit 1
SH
chmod +x "$hook"
cfg=$tmp/cluster.yaml
HOOK_TIMEOUT=5s write_config "$cfg" "$hook" "$SRC/packaging/hooks/stop-node"
start_cluster "$cfg"
before=$(lb_nodes)
[ "$before" = "n1 n2" ] || fail "unexpected initial node set: $before"
start_ctld "$cfg"
load 240 60000 hooks
trap 'kill -KILL $load_pid 2>/dev/null || true; cleanup' EXIT

# 1. failing hook
up_failed() { [ "$(metric blog_ctld_scale_events_total 'direction="up",result="failed"')" -ge 1 ]; }
wait_until 30 "a failed scale-up event" up_failed
[ "$(metric blog_ctld_hook_failures_total)" -ge 3 ] \
    || fail "hook failures: $(metric blog_ctld_hook_failures_total), expected 3 attempts"
[ "$(lb_nodes)" = "$before" ] || fail "node set changed after a failing hook: $(lb_nodes)"
grep -q '"msg":"hook failed".*cannot start a node' "$tmp/ctld.log" \
    || fail "the hook's stderr is not in the log"
log "failing hook: node set unchanged ($(lb_nodes))"

# 2. a node that never becomes ready (nothing listens on its port)
ghost_port=$BLOGSCALE_SPAWN_PORT_LAST
cat >"$hook" <<SH
#!/bin/sh
echo "ghost-1 127.0.0.1:$ghost_port"
SH
f0=$(metric blog_ctld_scale_events_total 'direction="up",result="failed"')
more_failed() { [ "$(metric blog_ctld_scale_events_total 'direction="up",result="failed"')" -gt "$f0" ]; }
wait_until 30 "a scale-up failing on readiness" more_failed
grep -q 'ghost-1.*not ready within' "$tmp/ctld.log" || fail "no readiness failure logged"
[ "$(lb_nodes)" = "$before" ] || fail "node set changed after a never-ready node: $(lb_nodes)"
# back to a failing hook; once the ghost attempt under way has ended, the state is empty
printf '#!/bin/sh\nexit 1\n' >"$hook"
f0=$(metric blog_ctld_scale_events_total 'direction="up",result="failed"')
wait_until 20 "the ghost attempt under way to end" more_failed
python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["nodes"] == [], s' "$tmp/ctld.json" || fail "state file keeps the ghost: $(cat "$tmp/ctld.json")"
log "never-ready node: node set unchanged"
stop_ctld

# 3. two LBs, the second refuses POST /nodes: rollback on the first, node stopped
cat >"$hook" <<SH
#!/bin/sh
exec "$SRC/packaging/hooks/spawn-node"
SH
P_STUB=$P_CTLD2
python3 - "$P_STUB" >"$tmp/stub.log" 2>&1 <<'PY' &
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def reply(self, code, body, ctype="application/json"):
        b = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def do_GET(self):
        if self.path == "/nodes":
            self.reply(200, json.dumps({"nodes": []}))
        elif self.path == "/metrics":
            self.reply(200, "blog_lb_requests_total{route=\"post\",code=\"200\"} 0\n", "text/plain")
        else:
            self.reply(404, '{"error":{"code":"not_found","message":"stub"}}')
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.reply(503, '{"error":{"code":"unavailable","message":"stub LB refuses"}}')
    def do_DELETE(self):
        self.reply(404, '{"error":{"code":"node_not_found","message":"stub"}}')
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
pids="$pids $!"
wait_until 10 "the stub LB" curl -sf -m 1 "http://127.0.0.1:$P_STUB/nodes" -o /dev/null
# a new ctld: its counters start at 0
start_ctld "$cfg" --lb-admin "127.0.0.1:$P_ADMIN" --lb-admin "127.0.0.1:$P_STUB"
wait_until 40 "a scale-up refused by the second LB" up_failed
grep -q 'stub LB refuses' "$tmp/ctld.log" || fail "the second LB's refusal is not logged"
[ "$(lb_nodes)" = "$before" ] || fail "half-added node left on the first LB: $(lb_nodes)"
wait_until 10 "the refused node stopped" no_spawned
log "second LB refuses: first LB rolled back ($(lb_nodes)), node stopped"
kill -KILL "$load_pid" 2>/dev/null || true
stop_ctld
[ "$(lb_nodes)" = "$before" ] || fail "node set changed: $(lb_nodes)"
log "ok"
