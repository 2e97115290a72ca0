#!/usr/bin/env bash
# blogctl's LB admin commands against a running blog-lb: nodes list/add/drain --wait/
# undrain/remove (table and --json), ring verify (one LB, then two LBs that disagree),
# route through GET /ring/route, scale status against blog-ctld (and without it).
source "$(dirname "$0")/ctld_lib.sh"

cfg=$tmp/cluster.yaml
write_config "$cfg" "$SRC/packaging/hooks/spawn-node" "$SRC/packaging/hooks/stop-node"
start_cluster "$cfg"
B() { timeout 30 "$BLOGCTL" -c "$cfg" "$@"; }

# a third node, not in the file
P_N3=$BLOGSCALE_SPAWN_PORT_FIRST
"$NODE" --config "$cfg" --name n3 --listen "127.0.0.1:$P_N3" >>"$tmp/n3.log" 2>&1 &
pids="$pids $!"
n3_ready() { curl -sf -m 1 "http://127.0.0.1:$P_N3/readyz" >/dev/null; }
wait_until 15 "n3 ready" n3_ready

B nodes list >"$tmp/list.txt" || fail "nodes list"
grep -q '^n1 .*config' "$tmp/list.txt" || fail "nodes list: $(cat "$tmp/list.txt")"
B nodes add n3 "127.0.0.1:$P_N3" --weight 2 >"$tmp/out" || fail "nodes add: $(cat "$tmp/out")"
[ "$(lb_nodes)" = "n1 n2 n3" ] || fail "after add: $(lb_nodes)"
set +e
B nodes add n3 "127.0.0.1:$P_N3" >"$tmp/out" 2>"$tmp/err"
rc=$?
set -e
[ "$rc" = 1 ] && grep -q node_exists "$tmp/err" || fail "second add: rc=$rc $(cat "$tmp/err")"
B --json nodes list | python3 -c '
import json, sys
d = json.load(sys.stdin)
n3 = [n for n in d["lbs"][0]["nodes"] if n["name"] == "n3"][0]
assert d["ok"] and n3["source"] == "admin" and n3["weight"] == 2, d' || fail "nodes list --json"
B ring verify >"$tmp/out" || fail "ring verify with one LB: $(cat "$tmp/out")"
grep -q 'agree' "$tmp/out" || fail "ring verify: $(cat "$tmp/out")"
B route /posts/65a1b2c3d4e5f60718293a4b >"$tmp/out" || fail "route"
grep -q 'owner' "$tmp/out" || fail "route: $(cat "$tmp/out")"
B --json route /posts/65a1b2c3d4e5f60718293a4b | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["source"] == "lb" and d["lbs"][0]["owner"] in ("n1", "n2", "n3"), d' \
    || fail "route --json"
B nodes drain n3 --wait --timeout 10s >"$tmp/out" || fail "drain --wait: $(cat "$tmp/out")"
admin GET /nodes | grep -q '"name":"n3"[^}]*"state":"draining"' || fail "n3 not draining"
B nodes undrain n3 >/dev/null || fail "undrain"
admin GET /nodes | grep -q '"name":"n3"[^}]*"state":"draining"' && fail "n3 still draining"
B nodes remove n3 >/dev/null || fail "remove"
[ "$(lb_nodes)" = "n1 n2" ] || fail "after remove: $(lb_nodes)"
set +e
B nodes remove n3 >/dev/null 2>"$tmp/err"
rc=$?
set -e
[ "$rc" = 1 ] && grep -q node_not_found "$tmp/err" || fail "remove twice: rc=$rc $(cat "$tmp/err")"
log "nodes add/list/drain/undrain/remove, ring verify, route: ok"

# two LBs that disagree: a second blog-lb with n3 in its file
cfg_b=$tmp/cluster-b.yaml
ports=$(python3 -c '
import socket
ss=[socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
read -r P_LB2 P_ADMIN2 <<<"$ports"
sed -e "s|127.0.0.1:$P_LB\"|127.0.0.1:$P_LB2\"|" -e "s|127.0.0.1:$P_ADMIN\"|127.0.0.1:$P_ADMIN2\"|" \
    -e "s|^nodes:|nodes:\n  - {name: n3, addr: \"127.0.0.1:$P_N3\"}|" "$cfg" >"$cfg_b"
"$LB" --config "$cfg_b" >>"$tmp/lb2.log" 2>&1 &
pids="$pids $!"
lb2_up() { curl -s -m 1 -o /dev/null "http://127.0.0.1:$P_ADMIN2/healthz"; }
wait_until 15 "the second LB" lb2_up
set +e
B --lb-admin "127.0.0.1:$P_ADMIN" --lb-admin "127.0.0.1:$P_ADMIN2" ring verify >"$tmp/out" 2>"$tmp/err"
rc=$?
set -e
[ "$rc" = 1 ] && grep -q DIFFERS "$tmp/out" || fail "ring verify of differing LBs: rc=$rc $(cat "$tmp/out" "$tmp/err")"
B --lb-admin "127.0.0.1:$P_ADMIN" --lb-admin "127.0.0.1:$P_ADMIN2" nodes add n3 "127.0.0.1:$P_N3" \
    >"$tmp/out" 2>"$tmp/err" && fail "add to an LB that has n3 succeeded"
[ "$(lb_nodes)" = "n1 n2" ] || fail "half-added n3 left on the first LB: $(lb_nodes)"
B --lb-admin "127.0.0.1:$P_ADMIN" nodes add n3 "127.0.0.1:$P_N3" >/dev/null || fail "add n3"
B --lb-admin "127.0.0.1:$P_ADMIN" --lb-admin "127.0.0.1:$P_ADMIN2" ring verify >"$tmp/out" \
    || fail "ring verify of agreeing LBs: $(cat "$tmp/out")"
log "ring verify across two LBs, rollback of a half-added node: ok"

# scale status: without ctld (exit 1, says so), then with it
set +e
B scale status >"$tmp/out" 2>"$tmp/err"
rc=$?
set -e
[ "$rc" = 1 ] && grep -q 'not reachable' "$tmp/err" || fail "scale status without ctld: rc=$rc $(cat "$tmp/err")"
B nodes remove n3 >/dev/null
start_ctld "$cfg"
decided() { B --json scale status | python3 -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if d["ok"] and d["leader"] and "decision" in d else 1)'; }
wait_until 15 "a decision in scale status" decided
B scale status >"$tmp/out" || fail "scale status"
grep -q 'actual 2, desired 2' "$tmp/out" || fail "scale status: $(cat "$tmp/out")"
stop_ctld
log "ok"
