#!/usr/bin/env bash
# blogctl without a running cluster: a broken config gives file:line:column and exit 1 for
# both `config check` and `up`; usage errors exit 2 with a hint; --help works for every
# command; `ring plan` and `route` compute from the config; an address in use stops `up`
# before anything starts.
set -euo pipefail
BLOGCTL=${BLOGCTL_BIN:?BLOGCTL_BIN not set}
SRC=${BLOG_SOURCE_DIR:?BLOG_SOURCE_DIR not set}
tmp=$(mktemp -d /tmp/test_blogctl_config.XXXXXX)
listener_pid=
cleanup() {
    [ -n "$listener_pid" ] && kill "$listener_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# run CMD... : sets rc, out, err (bounded)
run() {
    set +e
    timeout 20 "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    set -e
    out=$(cat "$tmp/out")
    err=$(cat "$tmp/err")
}

# 1. a broken file: unknown key on line 3, column 3
bad=$tmp/bad.yaml
printf 'cluster:\n  name: x\n  bogus: 1\nnodes:\n  - {name: n1, addr: "127.0.0.1:1"}\n' >"$bad"
run "$BLOGCTL" config check "$bad"
[ "$rc" = 1 ] || fail "config check on a bad file: exit $rc, want 1"
grep -q "^$bad:3:3: .*bogus" "$tmp/err" || fail "config check: no file:line:column error: $err"
run "$BLOGCTL" -c "$bad" up
[ "$rc" = 1 ] || fail "up on a bad file: exit $rc, want 1"
grep -q "^$bad:3:3: .*bogus" "$tmp/err" || fail "up: no file:line:column error: $err"
[ -z "$out" ] || fail "up on a bad file printed on stdout: $out"
run "$BLOGCTL" --json config check "$bad"
[ "$rc" = 1 ] || fail "--json config check: exit $rc"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["ok"] is False and ":3:3:" in d["error"], d' "$out" \
    || fail "--json config check output: $out"
# a wrong type on line 2
printf 'cluster:\n  redis_managed: maybe\n' >"$bad"
run "$BLOGCTL" config check "$bad"
[ "$rc" = 1 ] && grep -q "^$bad:2:" "$tmp/err" || fail "bad bool: rc=$rc $err"
# a missing file
run "$BLOGCTL" -c "$tmp/none.yaml" up
[ "$rc" = 1 ] && grep -q "none.yaml" "$tmp/err" || fail "missing file: rc=$rc $err"

# 2. the demo file is fine
run "$BLOGCTL" config check "$SRC/examples/local.yaml"
[ "$rc" = 0 ] || fail "config check examples/local.yaml: exit $rc: $err"
grep -q "local.yaml: ok" "$tmp/out" || fail "config check: no ok line: $out"
grep -q "3 nodes" "$tmp/out" || fail "config check summary: $out"
run env BLOGSCALE_CONFIG="$SRC/examples/local.yaml" "$BLOGCTL" --json config check
[ "$rc" = 0 ] || fail "config check via BLOGSCALE_CONFIG: exit $rc: $err"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["ok"] and len(d["nodes"]) == 3, d' "$out" \
    || fail "--json config check: $out"

# 3. usage errors: exit 2 with a hint
run "$BLOGCTL" stauts
[ "$rc" = 2 ] && grep -q "did you mean 'status'" "$tmp/err" || fail "typo: rc=$rc $err"
run "$BLOGCTL" nodes lst
[ "$rc" = 2 ] && grep -q "did you mean 'list'" "$tmp/err" || fail "subcommand typo: rc=$rc $err"
run "$BLOGCTL"
[ "$rc" = 2 ] || fail "no command: exit $rc"
run "$BLOGCTL" --bogus up
[ "$rc" = 2 ] || fail "bad option: exit $rc"
run "$BLOGCTL" -c "$SRC/examples/local.yaml" posts seed many
[ "$rc" = 2 ] || fail "posts seed many: exit $rc"
run env -u BLOGSCALE_TOKEN "$BLOGCTL" -c "$SRC/examples/local.yaml" posts seed 5
[ "$rc" = 2 ] && grep -q -- "--token" "$tmp/err" || fail "posts seed without a token: rc=$rc $err"
run "$BLOGCTL" -c "$SRC/examples/local.yaml" ring plan add
[ "$rc" = 2 ] || fail "ring plan add without a name: exit $rc"
run "$BLOGCTL" -c "$SRC/examples/local.yaml" cache flush not-an-id --token x
[ "$rc" = 2 ] || fail "cache flush not-an-id: exit $rc"
run env -u BLOGSCALE_TOKEN "$BLOGCTL" -c "$SRC/examples/local.yaml" cache flush
[ "$rc" = 2 ] && grep -q -- "--token" "$tmp/err" || fail "cache flush without a token: rc=$rc $err"
run "$BLOGCTL" -c "$SRC/examples/local.yaml" up --seed lots
[ "$rc" = 2 ] || fail "up --seed lots: exit $rc"
run "$BLOGCTL" -c "$SRC/examples/local.yaml" up now
[ "$rc" = 2 ] || fail "up now: exit $rc"

# 4. --help and --version
run "$BLOGCTL" --version
[ "$rc" = 0 ] && grep -q "^blogctl [0-9]" "$tmp/out" || fail "--version: $out"
run "$BLOGCTL" --help
[ "$rc" = 0 ] || fail "--help: exit $rc"
cp "$tmp/out" "$tmp/help"
for c in up status nodes config cache posts scale route ring; do
    grep -q "^  $c " "$tmp/help" || fail "--help does not list $c"
    run "$BLOGCTL" "$c" --help
    [ "$rc" = 0 ] && grep -q "^usage: blogctl.* $c" "$tmp/out" || fail "$c --help: rc=$rc $out"
done
# admin commands without a running LB say so (exit 1); usage errors are exit 2
run "$BLOGCTL" -c "$SRC/examples/local.yaml" --lb-admin 127.0.0.1:1 nodes drain n1
[ "$rc" = 1 ] && grep -q "is blog-lb running" "$tmp/err" || fail "nodes drain: rc=$rc $err"
run "$BLOGCTL" -c "$SRC/examples/local.yaml" nodes add n9 not-an-addr
[ "$rc" = 2 ] || fail "nodes add with a bad address: exit $rc"
run "$BLOGCTL" -c "$SRC/examples/local.yaml" nodes add 'bad/name' 127.0.0.1:9
[ "$rc" = 2 ] || fail "nodes add with a bad name: exit $rc"
run "$BLOGCTL" -c "$SRC/examples/local.yaml" --lb-admin 127.0.0.1:1 ring verify
[ "$rc" = 1 ] || fail "ring verify without an LB: exit $rc"
grep -v '^  bind: "127.0.0.1:8405"' "$SRC/examples/local.yaml" >"$tmp/nobind.yaml"
run "$BLOGCTL" -c "$tmp/nobind.yaml" scale status
[ "$rc" = 1 ] && grep -q "autoscale.bind" "$tmp/err" || fail "scale status without autoscale.bind: rc=$rc $err"
run "$BLOGCTL" -c "$SRC/examples/local.yaml" scale status
[ "$rc" = 1 ] && grep -q "not reachable" "$tmp/err" || fail "scale status with no blog-ctld running: rc=$rc $err"
run "$BLOGCTL" -c "$SRC/examples/local.yaml" nodes drain
[ "$rc" = 2 ] || fail "nodes drain without a name: exit $rc"

# 5. ring plan and route from the config
run "$BLOGCTL" -c "$SRC/examples/local.yaml" --json ring plan add n4
[ "$rc" = 0 ] || fail "ring plan add n4: exit $rc: $err"
python3 - "$out" <<'PY' || fail "ring plan add n4: $out"
import json, sys
d = json.loads(sys.argv[1])
# Maglev moves close to the minimum: 1/4 of the ids, all of them to the new node
assert 0.22 < d["moved_share"] < 0.28, d
assert all(f["to"] == "n4" for f in d["flows"]), d
assert abs(sum(f["share"] for f in d["flows"]) - d["moved_share"]) < 1e-3, d
PY
run "$BLOGCTL" -c "$SRC/examples/local.yaml" --json ring plan remove n2
[ "$rc" = 0 ] || fail "ring plan remove n2: exit $rc: $err"
python3 - "$out" <<'PY' || fail "ring plan remove n2: $out"
import json, sys
d = json.loads(sys.argv[1])
assert 0.30 < d["moved_share"] < 0.37, d
assert all(f["from"] == "n2" for f in d["flows"]), d
PY
run "$BLOGCTL" -c "$SRC/examples/local.yaml" ring plan remove n9
[ "$rc" = 1 ] || fail "ring plan remove n9: exit $rc"
run "$BLOGCTL" -c "$SRC/examples/local.yaml" --json route /posts/65a1b2c3d4e5f60718293a4b
[ "$rc" = 0 ] || fail "route: exit $rc: $err"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); p=[x["node"] for x in d["preferences"]]; assert sorted(p) == ["n1","n2","n3"] and d["owner"] == p[0], d' "$out" \
    || fail "route: $out"

# 6. an address in use stops `up` before anything starts, naming it
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
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); print("listening", flush=True); time.sleep(60)' "$p_lb" >"$tmp/listener.out" &
listener_pid=$!
for _ in $(seq 50); do grep -q listening "$tmp/listener.out" 2>/dev/null && break; sleep 0.1; done
run "$BLOGCTL" -c "$cfg" up
[ "$rc" = 1 ] || fail "up with the LB port taken: exit $rc"
if [ -x "$(dirname "$BLOGCTL")/../lb/blog-lb" ] && [ -x "$(dirname "$BLOGCTL")/../node/blog-node" ]; then
    grep -q "127.0.0.1:$p_lb (lb.listeners\[0\]) is in use by python3" "$tmp/err" \
        || fail "up with the LB port taken: $err"
    grep -q "another blogctl up" "$tmp/err" || fail "no hint: $err"
    grep -q "started" "$tmp/err" && fail "up started something although a port was taken: $err"
fi
[ -z "$out" ] || fail "up printed on stdout: $out"
# nothing runs there: nodes list fails naming the LB admin address, route falls back
# to the config
run "$BLOGCTL" -c "$cfg" nodes list
[ "$rc" = 1 ] && grep -q "127.0.0.1:$p_admin" "$tmp/err" || fail "nodes list without an LB: rc=$rc $err"
run "$BLOGCTL" -c "$cfg" --json route /posts/abc
[ "$rc" = 0 ] || fail "route without an LB: exit $rc"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["source"] == "config", d' "$out" \
    || fail "route without an LB: $out"
echo "ok"
