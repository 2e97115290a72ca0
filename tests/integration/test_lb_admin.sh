#!/usr/bin/env bash
# blog-lb admin API (docs/LB.md "Admin API") and reload, end to end with three python
# backends (tests/integration/lb_test_backend.py): 401 without or with a wrong token,
# every endpoint, add/remove/drain/undrain observed in the routing (a drained node gets no
# new requests while its slow in-flight one completes), POST /reload and SIGHUP under a
# steady keep-alive load with zero failed requests, an invalid file on reload answered 400
# with its file:line:column while the old configuration keeps serving.
set -euo pipefail
LB=${BLOG_LB_BIN:?BLOG_LB_BIN not set}
SRC=${BLOG_SOURCE_DIR:?BLOG_SOURCE_DIR not set}
tmp=$(mktemp -d /tmp/test_lb_admin.XXXXXX)
pids=
lb_pid=
cleanup() {
    if [ -n "$lb_pid" ]; then kill -KILL "$lb_pid" 2>/dev/null || true; fi
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    echo "--- blog-lb log (last 40 lines)" >&2; tail -n 40 "$tmp/lb.log" >&2 || true
    exit 1
}
ok() { echo "ok - $*"; }

read -r P_LB P_ADM P1 P2 P3 P4 <<<"$(python3 -c '
import socket
ss=[socket.socket() for _ in range(6)]
for s in ss: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')"
TOKEN=admin-secret-token
SHA=$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)
AUTH="Authorization: Bearer $TOKEN"
U=http://127.0.0.1:$P_ADM

i=0
for p in $P1 $P2 $P3 $P4; do
    i=$((i + 1))
    python3 "$SRC/tests/integration/lb_test_backend.py" --name "b$i" --port "$p" \
        >"$tmp/b$i.log" 2>&1 &
    pids="$pids $!"
done
for p in $P1 $P2 $P3 $P4; do
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$p/readyz" >/dev/null && break; sleep 0.1; done
done

write_conf() {   # $1: node lines
    cat >"$tmp/lb.yaml" <<YAML
cluster: {name: it}
node: {cache: {enabled: false}}
lb:
  listeners: [{bind: "127.0.0.1:$P_LB", mode: http}]
  admin: {bind: "127.0.0.1:$P_ADM", token_sha256: "$SHA"}
  workers: 2
  access_log: false
  health: {interval: 100ms, timeout: 1s, rise: 2, fall: 2}
  shutdown_timeout: 5s
nodes:
$1
log: {level: info}
YAML
}
N1="  - {name: b1, addr: \"127.0.0.1:$P1\"}"
N2="  - {name: b2, addr: \"127.0.0.1:$P2\"}"
N3="  - {name: b3, addr: \"127.0.0.1:$P3\"}"
N4="  - {name: b4, addr: \"127.0.0.1:$P4\"}"
write_conf "$N1
$N2"
"$LB" --config "$tmp/lb.yaml" >"$tmp/lb.log" 2>&1 &
lb_pid=$!
for _ in $(seq 100); do curl -sf "$U/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "$U/healthz" >/dev/null || fail "admin listener did not come up"

# jq-free JSON access: json FILTER (python expression over j) < body
json() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }
acurl() { curl -s -m 20 -H "$AUTH" "$@"; }
code() { curl -s -m 20 -o "$tmp/body" -w '%{http_code}' "$@"; }

# --- authentication
for path in /nodes /ring "/ring/route?id=abc" /metrics; do
    [ "$(code "$U$path")" = 401 ] || fail "$path without a token is not 401"
    [ "$(code -H 'Authorization: Bearer wrong' "$U$path")" = 401 ] || fail "$path with a wrong token is not 401"
done
[ "$(code -XPOST "$U/reload")" = 401 ] || fail "POST /reload without a token is not 401"
[ "$(code -XPOST -d '{"name":"x","addr":"127.0.0.1:1"}' "$U/nodes")" = 401 ] || fail "POST /nodes without a token"
curl -si "$U/nodes" | grep -qi '^WWW-Authenticate: Bearer' || fail "401 without WWW-Authenticate"
json 'j["error"]["code"]' <"$tmp/body" | grep -qx unauthorized || fail "401 body"
ok "401 without or with a wrong token"

# --- GET /nodes
[ "$(code -H "$AUTH" "$U/nodes")" = 200 ] || fail "GET /nodes"
[ "$(json '",".join(n["name"]+":"+n["state"]+":"+n["source"] for n in j["nodes"])' <"$tmp/body")" = \
  "b1:up:config,b2:up:config" ] || fail "GET /nodes: $(cat "$tmp/body")"
json 'all(set(n)>={"name","addr","state","weight","inflight","requests_per_s","ejections","source"} for n in j["nodes"])' \
    <"$tmp/body" | grep -qx True || fail "node object fields: $(cat "$tmp/body")"
ok "GET /nodes"

# --- GET /ring
acurl "$U/ring" >"$tmp/ring1"
json 'len(j["digest"])==64 and j["size"]==65537 and j["nodes"]==["b1","b2"]' <"$tmp/ring1" | grep -qx True \
    || fail "GET /ring: $(cat "$tmp/ring1")"
ok "GET /ring"

# --- POST /nodes: errors, then b3
[ "$(code -H "$AUTH" -XPOST -d '{"name":"b1","addr":"127.0.0.1:1"}' "$U/nodes")" = 409 ] || fail "existing name not 409"
json 'j["error"]["code"]' <"$tmp/body" | grep -qx node_exists || fail "409 code"
[ "$(code -H "$AUTH" -XPOST -d '{"name":"b/x","addr":"127.0.0.1:1"}' "$U/nodes")" = 400 ] || fail "bad name not 400"
[ "$(code -H "$AUTH" -XPOST -d '{"name":"bx","addr":"nowhere"}' "$U/nodes")" = 400 ] || fail "bad addr not 400"
[ "$(code -H "$AUTH" -XPOST -d '{"name":"bx","addr":"127.0.0.1:1","weight":-1}' "$U/nodes")" = 400 ] || fail "bad weight not 400"
[ "$(code -H "$AUTH" -XPOST -d '{"name":' "$U/nodes")" = 400 ] || fail "bad JSON not 400"
[ "$(code -H "$AUTH" -XPOST -d "{\"name\":\"b3\",\"addr\":\"127.0.0.1:$P3\",\"weight\":1}" "$U/nodes")" = 201 ] \
    || fail "POST /nodes b3: $(cat "$tmp/body")"
json 'j["name"]=="b3" and j["state"]=="down" and j["source"]=="admin"' <"$tmp/body" | grep -qx True \
    || fail "new node is not down/admin: $(cat "$tmp/body")"
up=0
for _ in $(seq 50); do
    if acurl "$U/nodes" | json '[n["state"] for n in j["nodes"] if n["name"]=="b3"][0]' | grep -qx up; then up=1; break; fi
    sleep 0.1
done
[ $up = 1 ] || fail "b3 never came up"
acurl "$U/ring" >"$tmp/ring2"
json 'j["nodes"]==["b1","b2","b3"]' <"$tmp/ring2" | grep -qx True || fail "ring after add"
[ "$(json 'j["digest"]' <"$tmp/ring1")" != "$(json 'j["digest"]' <"$tmp/ring2")" ] || fail "digest unchanged after add"
ok "POST /nodes (409, 400s, 201 down then up after rise)"

# an id owned by b3: requests for it reach b3
id3=$(python3 - "$U" "$AUTH" <<'PY'
import json, sys, urllib.request
base, auth = sys.argv[1], sys.argv[2].split(": ", 1)
for k in range(400):
    i = "%024x" % (k * 7919 + 12345)
    rq = urllib.request.Request(base + "/ring/route?id=" + i, headers={auth[0]: auth[1]})
    if json.load(urllib.request.urlopen(rq))["owner"] == "b3":
        print(i)
        break
PY
)
[ -n "$id3" ] || fail "no id owned by b3 in 200 tries"
acurl "$U/ring/route?id=$id3" >"$tmp/route"
json 'j["id"]=="'"$id3"'" and j["owner"]=="b3" and j["chosen"]=="b3" and j["spill"] is False and sorted(j["preferences"])==["b1","b2","b3"] and j["preferences"][0]=="b3"' \
    <"$tmp/route" | grep -qx True || fail "GET /ring/route: $(cat "$tmp/route")"
node_of() { curl -s -m 20 -D - -o /dev/null "http://127.0.0.1:$P_LB$1" | tr -d '\r' | sed -n 's/^X-Blog-Node: //ip'; }
[ "$(node_of "/posts/$id3")" = b3 ] || fail "id owned by b3 not routed to b3"
[ "$(code -H "$AUTH" "$U/ring/route")" = 400 ] || fail "route without id not 400"
ok "GET /ring/route, the added node serves its ids"

# --- drain: in-flight slow request completes on b3, new requests go to the next preference
# the test backend delays paths ending in /slow by ?ms=N: the id "slow"
slow_id=slow
owner=$(acurl "$U/ring/route?id=$slow_id" | json 'j["owner"]')
curl -s -m 30 -D "$tmp/slowh" -o "$tmp/slowb" "http://127.0.0.1:$P_LB/posts/$slow_id?ms=4000" &
slow_pid=$!
# one python process: wait until the slow request is in flight on its node, drain the node,
# check the answer and that the request is still in flight
python3 - "$U" "$AUTH" "$owner" >"$tmp/drain.out" <<'PY' || fail "drain: $(cat "$tmp/drain.out")"
import json, sys, time, urllib.request
base, auth, owner = sys.argv[1], sys.argv[2].split(": ", 1), sys.argv[3]
def call(method, path):
    rq = urllib.request.Request(base + path, method=method, headers={auth[0]: auth[1]})
    with urllib.request.urlopen(rq, timeout=10) as r:
        return r.status, json.load(r)
def inflight():
    return [n["inflight"] for n in call("GET", "/nodes")[1]["nodes"] if n["name"] == owner][0]
end = time.time() + 3.5
while inflight() == 0:
    if time.time() > end:
        print("the slow request never was in flight on", owner); sys.exit(1)
    time.sleep(0.02)
st, node = call("POST", "/nodes/%s/drain" % owner)
if st != 200 or node["state"] != "draining":
    print("drain answer", st, node); sys.exit(1)
if inflight() < 1:
    print("the slow request is not in flight any more after the drain"); sys.exit(1)
PY
for _ in 1 2 3 4 5; do
    n=$(node_of "/posts/$slow_id?ms=0")
    [ "$n" != "$owner" ] && [ -n "$n" ] || fail "drained node $owner got a new request"
done
acurl "$U/ring/route?id=$slow_id" | json 'j["chosen"]!="'"$owner"'"' | grep -qx True || fail "route chosen is the drained node"
wait $slow_pid
tr -d '\r' <"$tmp/slowh" | grep -q '^HTTP/1.1 200' || fail "in-flight request on the drained node failed"
tr -d '\r' <"$tmp/slowh" | grep -qi "^X-Blog-Node: $owner\$" || fail "slow request not served by $owner"
[ "$(code -H "$AUTH" -XPOST "$U/nodes/$owner/undrain")" = 200 ] || fail "undrain"
json 'j["state"]' <"$tmp/body" | grep -qx up || fail "undrain answer"
[ "$(node_of "/posts/$slow_id?ms=0")" = "$owner" ] || fail "undrained node does not get its ids back"
[ "$(code -H "$AUTH" -XPOST "$U/nodes/nope/drain")" = 404 ] || fail "drain unknown node not 404"
ok "drain (in-flight completes, new requests elsewhere) and undrain"

# --- weight
[ "$(code -H "$AUTH" -XPUT -d '{"weight":3}' "$U/nodes/b1/weight")" = 200 ] || fail "PUT weight"
json 'j["weight"]' <"$tmp/body" | grep -qx 3 || fail "weight answer"
[ "$(code -H "$AUTH" -XPUT -d '{"weight":"x"}' "$U/nodes/b1/weight")" = 400 ] || fail "bad weight not 400"
[ "$(code -H "$AUTH" -XPUT -d '{"weight":16777216}' "$U/nodes/b1/weight")" = 400 ] || fail "weight too big not 400"
[ "$(code -H "$AUTH" -XPUT -d '{"weight":1}' "$U/nodes/b1/weight")" = 200 ] || fail "PUT weight back"
[ "$(acurl "$U/ring" | json 'j["digest"]')" = "$(json 'j["digest"]' <"$tmp/ring2")" ] || fail "digest after weight back"
ok "PUT /nodes/{name}/weight"

# --- delete b3: its ids go to their second preference
[ "$(code -H "$AUTH" -XDELETE "$U/nodes/b3")" = 204 ] || fail "DELETE"
[ "$(code -H "$AUTH" -XDELETE "$U/nodes/b3")" = 404 ] || fail "DELETE twice not 404"
json 'j["error"]["code"]' <"$tmp/body" | grep -qx node_not_found || fail "404 code"
new_owner=$(acurl "$U/ring/route?id=$id3" | json 'j["owner"]')
[ "$new_owner" != b3 ] || fail "removed node still owns ids"
[ "$(node_of "/posts/$id3")" = "$new_owner" ] || fail "removed node's id not on its new owner"
[ "$(acurl "$U/ring" | json 'j["digest"]')" = "$(json 'j["digest"]' <"$tmp/ring1")" ] || fail "digest not back after remove"
ok "DELETE /nodes/{name}"

# --- reload: file adds b4; an admin-added node survives
[ "$(code -H "$AUTH" -XPOST -d "{\"name\":\"b3\",\"addr\":\"127.0.0.1:$P3\"}" "$U/nodes")" = 201 ] || fail "re-add b3"
write_conf "$N1
$N2
$N4"
[ "$(code -H "$AUTH" -XPOST "$U/reload")" = 200 ] || fail "POST /reload: $(cat "$tmp/body")"
json 'j["reloaded"] is True and j["added"]==["b4"] and j["removed"]==[] and 0 < j["moved_share"] < 0.5' \
    <"$tmp/body" | grep -qx True || fail "reload answer: $(cat "$tmp/body")"
acurl "$U/nodes" | json '",".join(n["name"]+":"+n["source"] for n in j["nodes"])' | grep -qx \
    "b1:config,b2:config,b4:config,b3:admin" || fail "node set after reload: $(acurl "$U/nodes")"
grep -q '"msg":"reloaded the node set and settings".*"added":"b4"' "$tmp/lb.log" || fail "reload log line"
# the file now names b3 too (file wins: source config)
write_conf "$N1
$N2
$N3
$N4"
kill -HUP "$lb_pid"
for _ in $(seq 50); do
    acurl "$U/nodes" | json '[n["source"] for n in j["nodes"] if n["name"]=="b3"][0]' | grep -qx config && break
    sleep 0.1
done
acurl "$U/nodes" | json '[n["source"] for n in j["nodes"] if n["name"]=="b3"][0]' | grep -qx config \
    || fail "SIGHUP: the file did not take over b3"
ok "POST /reload and SIGHUP (added/removed/moved_share, admin nodes kept, file wins)"

# --- invalid file: 400 with file:line:column, old config keeps serving
cp "$tmp/lb.yaml" "$tmp/good.yaml"
printf 'lb: [\n' >>"$tmp/lb.yaml"
[ "$(code -H "$AUTH" -XPOST "$U/reload")" = 400 ] || fail "invalid reload not 400"
json 'j["error"]["code"]' <"$tmp/body" | grep -qx invalid_config || fail "invalid reload code"
json 'j["error"]["message"]' <"$tmp/body" | grep -Eq 'lb\.yaml:[0-9]+:[0-9]+: ' || fail "no file:line:column: $(cat "$tmp/body")"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P_LB/posts/abc")" = 200 ] || fail "old config not serving"
acurl "$U/nodes" | json 'len(j["nodes"])' | grep -qx 4 || fail "node set changed by an invalid reload"
cp "$tmp/good.yaml" "$tmp/lb.yaml"
ok "invalid reload rejected, old configuration serving"

# --- reloads under a steady keep-alive load: zero failures, no refused connection
cat >"$tmp/load.py" <<'PY'
import http.client, sys, threading, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
stats = {"ok": 0, "fail": 0, "errors": []}
lock = threading.Lock()
def run(t):
    end = time.time() + secs
    conn = None
    k = 0
    while time.time() < end:
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/posts/load%d-%d" % (t, k % 50))
            r = conn.getresponse()
            r.read()
            with lock:
                if r.status == 200:
                    stats["ok"] += 1
                else:
                    stats["fail"] += 1
                    stats["errors"].append("status %d" % r.status)
            if r.getheader("Connection", "").lower() == "close":
                conn.close(); conn = None
        except Exception as e:
            with lock:
                stats["fail"] += 1
                stats["errors"].append(repr(e))
            conn = None
        k += 1
ts = [threading.Thread(target=run, args=(t,)) for t in range(6)]
[t.start() for t in ts]
[t.join() for t in ts]
print(stats["ok"], stats["fail"], ";".join(stats["errors"][:5]))
PY
python3 "$tmp/load.py" "$P_LB" 4 >"$tmp/load.out" &
load_pid=$!
sleep 0.5
for step in 1 2 3; do
    write_conf "$N1
$N2
$N4"
    kill -HUP "$lb_pid"
    sleep 0.4
    write_conf "$N1
$N2
$N3
$N4"
    [ "$(code -H "$AUTH" -XPOST "$U/reload")" = 200 ] || fail "reload under load: $(cat "$tmp/body")"
    sleep 0.4
done
wait $load_pid
read -r nok nfail errs <"$tmp/load.out" || true
[ "${nfail:-1}" = 0 ] && [ "${nok:-0}" -gt 200 ] || fail "load during reloads: ok=$nok fail=$nfail $errs"
ok "6 reloads under keep-alive load: $nok requests, 0 failed"

kill -TERM "$lb_pid"
for _ in $(seq 100); do kill -0 "$lb_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$lb_pid" 2>/dev/null; then fail "blog-lb did not exit on SIGTERM"; fi
wait "$lb_pid" || fail "blog-lb exit status $?"
lb_pid=
grep -Eq 'AddressSanitizer|ThreadSanitizer|runtime error' "$tmp/lb.log" && fail "sanitizer report"
ok "clean exit"
