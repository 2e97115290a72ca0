#!/usr/bin/env bash
# blog-ctld's state across failures, with two instances sharing a Redis lease:
#  1. exactly one leads (blog_ctld_leader), the other stands by; SIGKILL the leader and
#     the standby takes over once the lease expires;
#  2. SIGKILL the leader in the middle of a scale-up (the state file shows a node
#     "starting" or "adding"); the other instance takes over and the cluster converges
#     with no duplicate and no orphan: every spawned blog-node is in the LB exactly once
#     and in the state file, and after the load stops everything returns to the 2 config
#     nodes with no spawned process left.
source "$(dirname "$0")/ctld_lib.sh"
REDIS=$(command -v redis-server || true)
[ -n "$REDIS" ] || { echo "SKIP: redis-server not installed"; exit 0; }

P_REDIS=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$tmp/redis"
"$REDIS" --port "$P_REDIS" --bind 127.0.0.1 --dir "$tmp/redis" --save "" --appendonly no \
    >"$tmp/redis.log" 2>&1 &
pids="$pids $!"
for i in $(seq 1 50); do
    [ "$(redis-cli -p "$P_REDIS" ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
done
export REDIS_URL="redis://127.0.0.1:$P_REDIS/0"
cfg=$tmp/cluster.yaml
cfg2=$tmp/cluster2.yaml
write_config "$cfg" "$SRC/packaging/hooks/spawn-node" "$SRC/packaging/hooks/stop-node"
sed "s|bind: \"127.0.0.1:$P_CTLD\"|bind: \"127.0.0.1:$P_CTLD2\"|" "$cfg" >"$cfg2"
start_cluster "$cfg"

# instances: A on P_CTLD (config cfg), B on P_CTLD2 (cfg2)
pid_a=
pid_b=
start_a() { start_ctld "$cfg"; pid_a=$ctld_pid; ctld_pid=""; pids="$pids $pid_a"; }
start_b() { CTLD_PORT=$P_CTLD2 start_ctld "$cfg2"; pid_b=$ctld_pid; ctld_pid=""; pids="$pids $pid_b"; }
leader_a() { CTLD_PORT=$P_CTLD metric blog_ctld_leader; }
leader_b() { CTLD_PORT=$P_CTLD2 metric blog_ctld_leader; }
one_leader() { [ $(( $(leader_a) + $(leader_b) )) -eq 1 ]; }
start_a
start_b
wait_until 15 "one leader" one_leader
sleep 1.5
one_leader || fail "leaders: A=$(leader_a) B=$(leader_b)"
if [ "$(leader_a)" = 1 ]; then lead=a; else lead=b; fi
log "1. instance $lead leads, the other stands by"
grep -q '"msg":"standing by"' "$tmp/ctld.log" || fail "no standby log line"

kill_leader() {
    if [ "$lead" = a ]; then kill -KILL "$pid_a"; wait "$pid_a" 2>/dev/null || true
    else kill -KILL "$pid_b"; wait "$pid_b" 2>/dev/null || true; fi
}
kill_leader
if [ "$lead" = a ]; then
    b_leads() { [ "$(leader_b)" = 1 ]; }
    wait_until 25 "B takes over" b_leads
    lead=b; start_a
else
    a_leads() { [ "$(leader_a)" = 1 ]; }
    wait_until 25 "A takes over" a_leads
    lead=a; start_b
fi
sleep 1
one_leader || fail "after the takeover, leaders: A=$(leader_a) B=$(leader_b)"
log "   after SIGKILL of the leader, $lead leads; the restarted one stands by"

# 2. SIGKILL the leader mid-scale-up
load 240 60000 restart
trap 'kill -KILL $load_pid 2>/dev/null || true; cleanup' EXIT
if [ "$lead" = a ]; then victim=$pid_a; else victim=$pid_b; fi
python3 - "$tmp/ctld.json" "$victim" <<'PY' || fail "no scale-up step seen in the state file"
import json, os, signal, sys, time
path, pid = sys.argv[1], int(sys.argv[2])
end = time.time() + 30
while time.time() < end:
    try:
        s = json.load(open(path))
    except Exception:
        s = {"nodes": []}
    mid = [n for n in s["nodes"] if n["phase"] in ("starting", "adding")]
    if mid:
        os.kill(pid, signal.SIGKILL)
        print("killed during", [(n["name"], n["phase"]) for n in mid])
        sys.exit(0)
    time.sleep(0.005)
sys.exit(1)
PY
wait "$victim" 2>/dev/null || true
log "2. leader killed mid-scale: $(cat "$tmp/ctld.json" | tr -d ' \n')"
if [ "$lead" = a ]; then start_a; else start_b; fi

converged() {
    python3 - "$tmp/ctld.json" "$tmp/hooks" "http://127.0.0.1:$P_ADMIN/nodes" "$ADMIN_TOKEN" <<'PY'
import json, os, sys, urllib.request
path, hooks, url, tok = sys.argv[1:]
st = json.load(open(path))
req = urllib.request.Request(url, headers={"Authorization": "Bearer " + tok})
lb = json.load(urllib.request.urlopen(req, timeout=5))["nodes"]
names = [n["name"] for n in lb]
if len(names) != len(set(names)):
    print("duplicate in the LB", names); sys.exit(2)
if len(names) != 4 or any(n["phase"] != "active" for n in st["nodes"]):
    sys.exit(1)
spawned = set()
for f in os.listdir(hooks):
    if f.endswith(".pid"):
        pid = int(open(os.path.join(hooks, f)).read())
        try:
            os.kill(pid, 0)
            spawned.add(f[:-4])
        except OSError:
            pass
managed = {n["name"] for n in st["nodes"]}
admin = {n["name"] for n in lb if n["source"] == "admin"}
if not (spawned == managed == admin):
    print("spawned", sorted(spawned), "state", sorted(managed), "lb", sorted(admin))
    sys.exit(1)
PY
}
wait_until 40 "convergence at 4 nodes without duplicates or orphans" converged
log "   converged: $(lb_nodes)"
kill -KILL "$load_pid" 2>/dev/null || true
at_2() { [ "$(lb_nodes)" = "n1 n2" ] && [ "$(spawned_running)" = 0 ]; }
wait_until 30 "back to the 2 config nodes, spawned nodes stopped" at_2
one_leader || fail "leaders at the end: A=$(leader_a) B=$(leader_b)"
log "ok: $(lb_nodes)"
