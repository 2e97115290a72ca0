#!/usr/bin/env bash
# blog-lb mode: tcp listeners (docs/LB.md "L4"): HTTP through a tcp listener is passed
# unchanged (no X-Forwarded-*), maglev on the client address keeps a client on one node,
# leastconn avoids the busy node, 4 MiB echoed byte for byte with half-close (the client
# shuts its write side and still gets everything), with splice and with read/write
# (BLOG_LB_TCP_SPLICE=0), a dead node's connections go to another node (connect failure,
# retry), limits.idle_timeout closes a silent connection, and a tcp listener added and
# removed by a reload.
set -euo pipefail
LB=${BLOG_LB_BIN:?BLOG_LB_BIN not set}
SRC=${BLOG_SOURCE_DIR:?BLOG_SOURCE_DIR not set}
tmp=$(mktemp -d /tmp/test_lb_tcp.XXXXXX)
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
    echo "--- blog-lb log (last 30 lines)" >&2; tail -n 30 "$tmp/lb.log" >&2 || true
    exit 1
}
ok() { echo "ok - $*"; }

read -r P_H P_M P_L P_E P_ADM P1 P2 E1 E2 P_NEW <<<"$(python3 -c '
import socket
ss=[socket.socket() for _ in range(10)]
for s in ss: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')"

# echo node: answers the LB health check (GET /readyz) with 200, echoes anything else
# until EOF, then closes (so half-close is needed to get the whole echo back)
cat >"$tmp/echo.py" <<'PY'
import socket, socketserver, sys
class H(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        first = s.recv(65536)
        if first.startswith(b"GET /readyz"):
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        data = first
        while data:
            s.sendall(data)
            data = s.recv(65536)
        s.shutdown(socket.SHUT_WR)
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
i=0
for p in $P1 $P2; do
    i=$((i + 1))
    python3 "$SRC/tests/integration/lb_test_backend.py" --name "b$i" --port "$p" >"$tmp/b$i.log" 2>&1 &
    pids="$pids $!"
done
python3 "$tmp/echo.py" "$E1" >"$tmp/e1.log" 2>&1 & e1_pid=$!
python3 "$tmp/echo.py" "$E2" >"$tmp/e2.log" 2>&1 & e2_pid=$!
pids="$pids $e1_pid $e2_pid"
for p in $P1 $P2; do
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$p/readyz" >/dev/null && break; sleep 0.1; done
done

write_conf() {   # $1: extra listener lines, $2: nodes
    cat >"$tmp/lb.yaml" <<YAML
cluster: {name: it}
node: {cache: {enabled: false}}
lb:
  listeners:
    - {bind: "127.0.0.1:$P_H", mode: tcp, balance: maglev}
$1
  admin: {bind: "127.0.0.1:$P_ADM"}
  workers: 2
  access_log: false
  limits: {idle_timeout: 3s, connect_timeout: 1s}
  health: {interval: 200ms, timeout: 1s, rise: 1, fall: 2}
nodes:
$2
log: {level: info}
YAML
}
HTTP_NODES="  - {name: b1, addr: \"127.0.0.1:$P1\"}
  - {name: b2, addr: \"127.0.0.1:$P2\"}"
start_lb() {
    "$LB" --config "$tmp/lb.yaml" >"$tmp/lb.log" 2>&1 &
    lb_pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$P_ADM/healthz" >/dev/null && break; sleep 0.1; done
}
stop_lb() {
    kill -TERM "$lb_pid"
    wait "$lb_pid" || fail "blog-lb exit status $?"
    lb_pid=
    grep -Eq 'AddressSanitizer|ThreadSanitizer|runtime error|LeakSanitizer' "$tmp/lb.log" && fail "sanitizer report"
    return 0
}

# --- HTTP through tcp listeners
write_conf "    - {bind: \"127.0.0.1:$P_L\", mode: tcp, balance: leastconn}" "$HTTP_NODES"
start_lb
grep -q '"bind":"127.0.0.1:'"$P_H"'","mode":"tcp"' "$tmp/lb.log" || fail "no tcp listening line"
curl -s -m 10 "http://127.0.0.1:$P_H/posts/x" >"$tmp/r.json" || fail "GET through tcp"
python3 - "$tmp/r.json" <<'PY' || fail "request not passed unchanged: $(cat "$tmp/r.json")"
import json, sys
j = json.load(open(sys.argv[1]))
h = dict(j["headers"])
sys.exit(0 if j["path"] == "/posts/x" and not any(k.startswith("X-Forwarded") for k in h) and "X-Request-Id" not in h else 1)
PY
nodes=$(for _ in $(seq 12); do curl -s -m 10 -D - -o /dev/null "http://127.0.0.1:$P_H/assets/$RANDOM" | tr -d '\r' | sed -n 's/^X-Blog-Node: //p'; done | sort -u)
[ "$(wc -l <<<"$nodes")" = 1 ] || fail "maglev on the client address: one client reached several nodes: $nodes"
ok "HTTP passed unchanged; maglev keeps a client on one node ($nodes)"

curl -s -m 10 -o /dev/null "http://127.0.0.1:$P_L/posts/slow?ms=2000" & slow=$!
sleep 0.5
busy=$(curl -s "http://127.0.0.1:$P_ADM/nodes" | python3 -c 'import json,sys; print([n["name"] for n in json.load(sys.stdin)["nodes"] if n["inflight"]>0])')
other=$(curl -s -m 10 -D - -o /dev/null "http://127.0.0.1:$P_L/posts/y" | tr -d '\r' | sed -n 's/^X-Blog-Node: //p')
allup=$(curl -s "http://127.0.0.1:$P_ADM/nodes" | python3 -c 'import json,sys; print(all(n["state"]=="up" for n in json.load(sys.stdin)["nodes"]))')
wait $slow
# (a node whose health check timed out on a loaded machine is down: then the busy one is right)
[ -n "$other" ] && { ! grep -q "'$other'" <<<"$busy" || [ "$allup" != True ]; } ||
    fail "leastconn sent a connection to the busy node ($busy, got $other)"
ok "leastconn avoids the node holding a connection ($busy busy, $other chosen)"

# --- idle timeout
python3 - "$P_H" <<'PY' || fail "idle connection not closed by idle_timeout"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=6)
t = time.time()
d = s.recv(10)     # the node (http.server) waits for a request; the LB closes at idle_timeout
sys.exit(0 if d == b"" and 2.5 < time.time() - t < 5.8 else 1)
PY
ok "idle_timeout closes a silent tcp connection"
stop_lb

# --- echo with half-close, splice and read/write; a dead node
ECHO_NODES="  - {name: e1, addr: \"127.0.0.1:$E1\"}
  - {name: e2, addr: \"127.0.0.1:$E2\"}"
cat >"$tmp/halfclose.py" <<'PY'
import hashlib, os, socket, sys, threading
port, size = int(sys.argv[1]), int(sys.argv[2])
data = os.urandom(size)
s = socket.create_connection(("127.0.0.1", port), timeout=20)
got = []
def rd():
    while True:
        b = s.recv(1 << 16)
        if not b:
            break
        got.append(b)
t = threading.Thread(target=rd); t.start()
s.sendall(data)
s.shutdown(socket.SHUT_WR)          # half-close: the echo server sees EOF only through the LB
t.join(20)
back = b"".join(got)
print(len(back), hashlib.sha256(back).hexdigest() == hashlib.sha256(data).hexdigest())
PY
for mode in splice readwrite; do
    write_conf "" "$ECHO_NODES"
    if [ $mode = readwrite ]; then export BLOG_LB_TCP_SPLICE=0; else unset BLOG_LB_TCP_SPLICE; fi
    start_lb
    unset BLOG_LB_TCP_SPLICE
    for _ in 1 2 3; do
        out=$(python3 "$tmp/halfclose.py" "$P_H" 4194304)
        [ "$out" = "4194304 True" ] || fail "$mode: half-closed echo of 4 MiB: $out"
    done
    ok "$mode: 4 MiB echoed byte for byte after a half-close (3 connections)"
    if [ $mode = readwrite ]; then
        kill -KILL "$e1_pid" "$e2_pid" 2>/dev/null || true
        python3 "$tmp/echo.py" "$E2" >"$tmp/e2.log" 2>&1 & e2_pid=$!
        pids="$pids $e2_pid"
        for _ in $(seq 50); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $E2))" 2>/dev/null && break; sleep 0.1; done
        for _ in 1 2 3 4; do
            out=$(python3 "$tmp/halfclose.py" "$P_H" 65536)
            [ "$out" = "65536 True" ] || fail "with e1 dead: $out"
        done
        curl -s "http://127.0.0.1:$P_ADM/nodes" | python3 -c 'import json,sys; s={n["name"]:n["state"] for n in json.load(sys.stdin)["nodes"]}; sys.exit(0 if s["e1"]=="down" and s["e2"]=="up" else 1)' \
            || fail "e1 not marked down"
        ok "a dead node: connections go to the other node, the dead one is marked down"
    fi
    stop_lb
done

# --- a tcp listener added, then removed, by reloads (the other listener keeps its socket)
write_conf "" "$ECHO_NODES"
start_lb
write_conf "    - {bind: \"127.0.0.1:$P_NEW\", mode: tcp, balance: leastconn}" "$ECHO_NODES"
kill -HUP "$lb_pid"
for _ in $(seq 50); do grep -q '"listeners_opened":1' "$tmp/lb.log" && break; sleep 0.1; done
[ "$(python3 "$tmp/halfclose.py" "$P_NEW" 1000)" = "1000 True" ] || fail "listener added by reload"
write_conf "" "$ECHO_NODES"
kill -HUP "$lb_pid"
for _ in $(seq 50); do grep -q '"listeners_closed":1' "$tmp/lb.log" && break; sleep 0.1; done
if python3 -c "import socket; socket.create_connection(('127.0.0.1', $P_NEW), timeout=2)" 2>/dev/null; then
    fail "listener removed by reload still accepts"
fi
[ "$(python3 "$tmp/halfclose.py" "$P_H" 1000)" = "1000 True" ] || fail "kept listener after reloads"
stop_lb
ok "tcp listener added and removed by reload, the kept one serving"
