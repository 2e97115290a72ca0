#!/usr/bin/env bash
# Fail-fast: when a child of `blogctl up` dies (here: n2 gets SIGKILL), blogctl says which
# and why, stops everything else and exits 1 with nothing left running.
set -euo pipefail
BLOGCTL=${BLOGCTL_BIN:?BLOGCTL_BIN not set}
SRC=${BLOG_SOURCE_DIR:?BLOG_SOURCE_DIR not set}
tmp=$(mktemp -d /tmp/test_blogctl_failfast.XXXXXX)
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

ports=$(python3 -c '
import socket
ss=[socket.socket() for _ in range(6)]
for s in ss: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
read -r p_lb p_admin p_n1 p_n2 p_n3 p_redis <<<"$ports"
cfg=$tmp/cluster.yaml
python3 - "$SRC/examples/local.yaml" "$cfg" "$tmp/data" "$p_lb" "$p_admin" "$p_n1" "$p_n2" "$p_n3" "$p_redis" <<'PY'
import re, sys
src, dst, data, lb, admin, n1, n2, n3, redis = sys.argv[1:]
m = {"8080": lb, "8404": admin, "9101": n1, "9102": n2, "9103": n3, "6390": redis}
t = open(src).read()
t = re.sub(r"127\.0\.0\.1:(\d+)", lambda x: "127.0.0.1:" + m.get(x.group(1), x.group(1)), t)
t = t.replace("/var/tmp/blogscale-demo/data", data)
open(dst, "w").write(t)
PY

"$BLOGCTL" -c "$cfg" up >"$tmp/up.out" 2>"$tmp/up.err" &
up_pid=$!
for _ in $(seq 300); do
    grep -q '^blogscale up: ' "$tmp/up.out" && break
    kill -0 "$up_pid" 2>/dev/null || fail "blogctl up exited before it was ready"
    sleep 0.1
done
grep -q '^blogscale up: ' "$tmp/up.out" || fail "no readiness line within 30 s"
children=$(cat /proc/"$up_pid"/task/*/children 2>/dev/null || true)
n2=$(sed -n 's/^blogctl: started n2 (pid \([0-9]*\)).*/\1/p' "$tmp/up.err")
[ -n "$n2" ] || fail "no pid for n2 in the log"
grep -qw "$n2" <<<"$children" || fail "n2 pid $n2 is not a child of blogctl ($children)"

kill -KILL "$n2"
rc=
for _ in $(seq 150); do
    if ! kill -0 "$up_pid" 2>/dev/null; then
        set +e; wait "$up_pid"; rc=$?; set -e
        break
    fi
    sleep 0.1
done
[ -n "$rc" ] || fail "blogctl still running 15 s after n2 died"
up_pid=
[ "$rc" = 1 ] || fail "blogctl exited $rc after a child died, want 1"
grep -q "n2 (pid $n2) killed by signal 9" "$tmp/up.err" || fail "no obituary for n2"
grep -q "fail-fast" "$tmp/up.err" || fail "no fail-fast message"
for p in $children; do
    if kill -0 "$p" 2>/dev/null; then
        fail "child $p ($(cat /proc/"$p"/comm 2>/dev/null)) still running"
    fi
done
echo ok
