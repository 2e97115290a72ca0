#!/usr/bin/env bash
# blog-ctld with the default hooks: a load step drives the cluster from 2 nodes to more
# (spawn-node starts them, ctld adds them to the LB), and after the load drops and the
# down window passes, back to 2 (drain, remove, stop-node) with zero failed requests
# during the scale-down; then a load hovering at the 2-node threshold does not flap.
# Windows are short (interval 500ms, up 1s, down 3s, cooldown 1s, target 50 req/s/node).
source "$(dirname "$0")/ctld_lib.sh"

cfg=$tmp/cluster.yaml
write_config "$cfg" "$SRC/packaging/hooks/spawn-node" "$SRC/packaging/hooks/stop-node"
"$CTLD" --check-config --config "$cfg" >/dev/null || fail "check-config"
start_cluster "$cfg"
start_ctld "$cfg"
log "cluster up: $(lb_nodes)"
wait_until 10 "ctld leads" ctld_leads

# 1. load step: 240 req/s = 5 nodes' worth (clamped to max 4)
load 240 25000 step
up_load=$load_pid
more_than_2() { [ "$(lb_active_count)" -gt 2 ]; }
wait_until 30 "scale-up beyond 2 nodes" more_than_2
at_4() { [ "$(lb_active_count)" -ge 4 ]; }
wait_until 30 "scale-up to 4 nodes" at_4
log "scaled up: $(lb_nodes)"
[ "$(spawned_running)" = 2 ] || fail "expected 2 spawned blog-node processes, got $(spawned_running)"
[ "$(metric blog_ctld_scale_events_total 'direction="up",result="ok"')" -ge 2 ] \
    || fail "scale-up events not counted"
"$BLOGCTL" -c "$cfg" scale status >"$tmp/scale.txt" || fail "blogctl scale status failed"
grep -q "leader" "$tmp/scale.txt" || fail "scale status: $(cat "$tmp/scale.txt")"
kill -TERM "$up_load" 2>/dev/null || true
wait "$up_load" 2>/dev/null || true

# 2. the load drops to 20 req/s (1 node's worth): back to min 2 after the down window,
#    with zero failed requests while nodes are drained, removed and stopped
load 20 14000 down
down_load=$load_pid
at_2() { [ "$(lb_active_count)" -eq 2 ] && [ "$(lb_nodes)" = "n1 n2" ]; }
wait_until 30 "scale-down to 2 nodes" at_2
log "scaled down: $(lb_nodes)"
set +e
wait "$down_load"
rc=$?
set -e
summary=$(grep summary "$tmp/load-down.out" || true)
[ "$rc" = 0 ] || fail "requests failed during the scale-down (blog-load exit $rc): $summary"
log "load during scale-down: $summary"
wait_until 10 "spawned nodes stopped" no_spawned
[ "$(metric blog_ctld_scale_events_total 'direction="down",result="ok"')" -ge 2 ] \
    || fail "scale-down events not counted"
python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["nodes"] == [], s' "$tmp/ctld.json" || fail "state file still lists nodes"

# 3. a load hovering at the threshold (2 nodes x 50 = 100 req/s, tolerance 10%): at most
#    one scale event in 10 s
sleep 1.5                       # the cooldown of the last step
before=$(events_total)
load 100 10000 hover
wait "$load_pid" || fail "requests failed during the hovering load"
after=$(events_total)
log "scale events while hovering: $((after - before))"
[ $((after - before)) -le 1 ] || fail "flapping: $((after - before)) scale events in 10 s"
grep -q '"msg":"decision"' "$tmp/ctld.log" || fail "no decision log line"
stop_ctld
log "ok"
