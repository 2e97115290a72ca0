#!/usr/bin/env bash
# Fail-fast: when a child of `blogctl up` dies (here: n2 gets SIGKILL), blogctl says which
# and why, stops everything else and exits 1 with nothing left running. Then a startup
# that cannot complete (the nodes' Redis is not there, so they never become ready) stops
# what it started and exits 1 naming the node and the probe's answer.
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

. "$SRC/tests/integration/demo_config.sh"
cfg=$tmp/cluster.yaml
demo_config "$SRC/examples/local.yaml" "$cfg" "$tmp/data"

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

# 2. startups that cannot complete, with a stand-in blog-node next to a copy of blogctl
#    (blogctl finds its children relative to its own executable)
mkdir -p "$tmp/bin/ctl" "$tmp/bin/node" "$tmp/bin/lb"
cp "$BLOGCTL" "$tmp/bin/ctl/blogctl"
ln -s "$(cd "$(dirname "$BLOGCTL")/../lb" && pwd)/blog-lb" "$tmp/bin/lb/blog-lb"
cat >"$tmp/bin/node/blog-node" <<'SH'
#!/bin/sh
echo "fake node $*: mode $FAKE_NODE_MODE"
if [ "$FAKE_NODE_MODE" = exit ]; then
    echo "cannot open the store: it is a test" >&2
    exit 3
fi
exec sleep 60
SH
chmod +x "$tmp/bin/node/blog-node"

# start_failing MODE: runs up, waits for it to end (<= 40 s), checks exit 1 and no leftovers
start_failing() {
    : >"$tmp/up.err"
    FAKE_NODE_MODE=$1 "$tmp/bin/ctl/blogctl" -c "$cfg" up >"$tmp/up.out" 2>"$tmp/up.err" &
    up_pid=$!
    children=
    rc=
    for _ in $(seq 400); do
        c=$(cat /proc/"$up_pid"/task/*/children 2>/dev/null || true)
        [ -n "$c" ] && children="$children $c"
        if ! kill -0 "$up_pid" 2>/dev/null; then
            set +e; wait "$up_pid"; rc=$?; set -e
            break
        fi
        sleep 0.1
    done
    [ -n "$rc" ] || fail "$1: blogctl up still running 40 s after a start that cannot complete"
    up_pid=
    [ "$rc" = 1 ] || fail "$1: exit $rc for a failed startup, want 1"
    grep -q '^blogscale up' "$tmp/up.out" && fail "$1: readiness line printed for a failed startup"
    grep -q "redis (pid [0-9]*) stopped" "$tmp/up.err" || fail "$1: redis not stopped"
    for p in $(tr ' ' '\n' <<<"$children" | sort -u); do
        if kill -0 "$p" 2>/dev/null; then
            fail "$1: child $p ($(cat /proc/"$p"/comm 2>/dev/null)) still running"
        fi
    done
}

# a node that exits at once: its obituary with the exit code and its last lines
start_failing exit
grep -q "n[123] (pid [0-9]*) exited with code 3 before it was ready" "$tmp/up.err" \
    || fail "exit: no obituary"
grep -q "blogctl:   n[123] | cannot open the store: it is a test" "$tmp/up.err" \
    || fail "exit: the node's last lines are not shown"

# a node that never answers /readyz: named, with the probe's error, after 15 s
start_failing hang
grep -q "node n1 was not ready within 15 s: GET http://127.0.0.1:$p_n1/readyz: connect to" "$tmp/up.err" \
    || fail "hang: no reason for the failed startup"
grep -q "n1 (pid [0-9]*) stopped" "$tmp/up.err" || fail "hang: n1 not stopped"
grep -q "started lb" "$tmp/up.err" && fail "hang: the LB was started before the nodes were ready"
echo ok
