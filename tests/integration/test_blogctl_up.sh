#!/usr/bin/env bash
# `blogctl up` on a copy of examples/local.yaml (free ports, temp data dir): the readiness
# line appears on stdout after up seeded the empty demo store with 100 posts, a post
# written through the LB with the demo token reads back through the LB, `posts seed 50`
# works and GET /posts shows them, `status`, `nodes list` and `route` agree with the LB;
# blog-ctld runs report-only (the demo has no hooks) and decides 3 -> 3;
# SIGTERM stops everything (exit 0) and no child of blogctl is left.
set -euo pipefail
BLOGCTL=${BLOGCTL_BIN:?BLOGCTL_BIN not set}
SRC=${BLOG_SOURCE_DIR:?BLOG_SOURCE_DIR not set}
TOKEN=blogscale-demo-token
tmp=$(mktemp -d /tmp/test_blogctl_up.XXXXXX)
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
    echo "--- blogctl stdout" >&2; cat "$tmp/up.out" >&2 || true
    echo "--- blogctl stderr (last 60 lines)" >&2; tail -n 60 "$tmp/up.err" >&2 || true
    exit 1
}

. "$SRC/tests/integration/demo_config.sh"
cfg=$tmp/cluster.yaml
demo_config "$SRC/examples/local.yaml" "$cfg" "$tmp/data"

"$BLOGCTL" -c "$cfg" up >"$tmp/up.out" 2>"$tmp/up.err" &
up_pid=$!

# the readiness line, within 30 s
api=
for _ in $(seq 300); do
    line=$(grep -m1 '^blogscale up: ' "$tmp/up.out" || true)
    if [ -n "$line" ]; then
        api=$(sed -n 's/^blogscale up: api=\([^ ]*\) admin=.*$/\1/p' <<<"$line")
        break
    fi
    kill -0 "$up_pid" 2>/dev/null || fail "blogctl up exited before it was ready"
    sleep 0.1
done
[ -n "$api" ] || fail "no readiness line within 30 s"
[ "$api" = "http://127.0.0.1:$p_lb" ] || fail "api=$api, want http://127.0.0.1:$p_lb"
grep -q "^blogscale up: api=http://127.0.0.1:$p_lb admin=http://127.0.0.1:$p_admin\$" "$tmp/up.out" \
    || fail "readiness line: $(head -1 "$tmp/up.out")"
# the summary names the demo token (the file holds its digest)
sleep 0.2
grep -q "Bearer $TOKEN" "$tmp/up.out" || fail "summary has no curl example with the demo token"
grep -q "Ctrl-C to stop" "$tmp/up.out" || fail "summary incomplete"
# child logs are prefixed with their names
grep -q '^n1  *| ' "$tmp/up.err" || fail "no n1-prefixed log lines"
grep -q '^lb  *| ' "$tmp/up.err" || fail "no lb-prefixed log lines"

# the children of blogctl, for the final check
children=$(cat /proc/"$up_pid"/task/*/children 2>/dev/null || true)
nchildren=$(wc -w <<<"$children")
[ "$nchildren" -ge 5 ] || fail "expected at least 5 children (redis, 3 nodes, lb), got: $children"
for p in $children; do
    grep -q "started .* (pid $p)" "$tmp/up.err" || fail "child $p not announced in the log"
done

# the demo store was empty, so up seeded 100 sample posts before the readiness line
grep -q "the store was empty: seeded 100 sample posts" "$tmp/up.out" || fail "no seeding note"
count_posts() {
    curl -s -m 10 "$api/posts?limit=1000" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["posts"]))'
}
n=$(count_posts) || fail "GET /posts failed"
[ "$n" = 100 ] || fail "GET /posts right after up shows $n posts, want the 100 seeded"

# a post through the LB, read back through the LB
resp=$(curl -s -m 10 -w '\n%{http_code}' -X POST "$api/posts" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"title":"Hello from the up test","body":"It works.","author":"test","tags":["t"]}')
code=$(tail -n1 <<<"$resp")
[ "$code" = 201 ] || fail "POST /posts: $resp"
id=$(head -n -1 <<<"$resp" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
got=$(curl -s -m 10 "$api/posts/$id")
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["title"]=="Hello from the up test", d' "$got" \
    || fail "GET /posts/$id: $got"

# posts seed 50 through the LB, then the list shows them
timeout 60 "$BLOGCTL" -c "$cfg" posts seed 50 --token "$TOKEN" >"$tmp/seed.out" 2>"$tmp/seed.err" \
    || fail "posts seed 50 failed: $(cat "$tmp/seed.out" "$tmp/seed.err")"
grep -q "seeded 50 of 50" "$tmp/seed.out" || fail "seed output: $(cat "$tmp/seed.out")"
BLOGSCALE_TOKEN=$TOKEN timeout 60 "$BLOGCTL" -c "$cfg" --json posts seed 3 >"$tmp/seed.json" \
    || fail "posts seed 3 --json failed"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] and d["created"]==3, d' "$tmp/seed.json" \
    || fail "seed --json: $(cat "$tmp/seed.json")"
n=$(count_posts) || fail "GET /posts failed"
[ "$n" = 154 ] || fail "GET /posts shows $n posts, want 100 + 1 + 50 + 3"
# a wrong token: seed fails with exit 1 and the API's error
set +e
timeout 30 "$BLOGCTL" -c "$cfg" posts seed 2 --token wrong >"$tmp/bad.out" 2>"$tmp/bad.err"
rc=$?
set -e
[ "$rc" = 1 ] && grep -q "401" "$tmp/bad.err" || fail "seed with a wrong token: rc=$rc $(cat "$tmp/bad.err")"

# status: every node ready
BLOGSCALE_ADMIN_TOKEN=blogscale-demo-admin timeout 30 "$BLOGCTL" -c "$cfg" --json status --window 0 >"$tmp/status.json" \
    || fail "status failed: $(cat "$tmp/status.json")"
python3 - "$tmp/status.json" <<'PY' || fail "status: $(cat "$tmp/status.json")"
import json, sys
d = json.load(open(sys.argv[1]))
nodes = [c for c in d["components"] if c["kind"] == "node"]
assert [c["name"] for c in nodes] == ["n1", "n2", "n3"], d
assert all(c["state"] == "ready" for c in nodes), d
assert all(c["requests"] is not None and c["requests"] > 0 for c in nodes), d
# the LB's admin /metrics answers with the demo admin token, and sees the nodes up
lb = [c for c in d["components"] if c["kind"] == "lb"]
assert len(lb) == 1 and lb[0]["state"].startswith("up") and lb[0]["metrics"], d
assert all(c["lb_view"] in (None, "up") for c in nodes), d
PY

# nodes list: the LB's live view (the demo admin token is used automatically)
timeout 30 "$BLOGCTL" -c "$cfg" --json nodes list >"$tmp/nodes.json" \
    || fail "nodes list failed: $(cat "$tmp/nodes.json")"
python3 - "$tmp/nodes.json" <<'PY' || fail "nodes list: $(cat "$tmp/nodes.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert sorted(n["name"] for n in d["nodes"]) == ["n1", "n2", "n3"], d
assert all(n["in_lb"] and n["state"] == "up" and n["addr"] for n in d["nodes"]), d
PY
# scale status: blog-ctld runs report-only in the demo (no hooks) and answers on autoscale.bind
timeout 30 "$BLOGCTL" -c "$cfg" --json scale status >"$tmp/scale.json" \
    || fail "scale status failed: $(cat "$tmp/scale.json")"
python3 - "$tmp/scale.json" <<'PY' || fail "scale status: $(cat "$tmp/scale.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d.get("report_only") is True and d.get("min") == 3 and d.get("max") == 6, d
PY
# route: the LB's live pick for the post written above, which the LB must agree with
timeout 30 "$BLOGCTL" -c "$cfg" --json route "/posts/$id" >"$tmp/route.json" \
    || fail "route failed: $(cat "$tmp/route.json")"
owner=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["source"]=="lb" and d["pick"]==d["owner"], d; print(d["owner"])' "$tmp/route.json") \
    || fail "route: $(cat "$tmp/route.json")"
served=$(curl -s -m 10 -D - -o /dev/null "$api/posts/$id" | tr -d '\r' | sed -n 's/^[Xx]-[Bb]log-[Nn]ode: //p')
[ "$served" = "$owner" ] || fail "route says $owner owns $id, the LB sent it to '$served'"

# cache flush ID: the next read of that post is a miss again (X-Cache), on its owner
xcache() {
    curl -s -m 10 -D - -o /dev/null "$api/posts/$id" | tr -d '\r' | sed -n 's/^[Xx]-[Cc]ache: //p'
}
xcache >/dev/null
[ "$(xcache)" = HIT ] || fail "second read of $id is not a cache HIT"
timeout 30 "$BLOGCTL" -c "$cfg" --json cache flush "$id" --token "$TOKEN" >"$tmp/flush.json" \
    || fail "cache flush $id failed: $(cat "$tmp/flush.json")"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] and len(d["nodes"])==3 and all(n["ok"] for n in d["nodes"]), d' "$tmp/flush.json" \
    || fail "cache flush: $(cat "$tmp/flush.json")"
[ "$(xcache)" = MISS ] || fail "read of $id after cache flush is not a MISS"
set +e
timeout 30 "$BLOGCTL" -c "$cfg" cache flush --token wrong >"$tmp/flush.out" 2>"$tmp/flush.err"
rc=$?
set -e
[ "$rc" = 1 ] && grep -q "401" "$tmp/flush.out" || fail "cache flush with a wrong token: rc=$rc $(cat "$tmp/flush.out" "$tmp/flush.err")"

# blog-ctld runs with the demo's autoscale section (min 3, max 6, no hooks): report-only,
# leading through the managed Redis, deciding on the LB's live counters
if [ -x "${BLOG_CTLD_BIN:-}" ]; then
    grep -q '^ctld  *| .*"msg":"started in report-only mode' "$tmp/up.err" \
        || fail "ctld did not start in report-only mode"
    decided() { grep -q '^ctld  *| .*"msg":"decision","current":3,"desired":3' "$tmp/up.err"; }
    for _ in $(seq 100); do decided && break; sleep 0.1; done
    decided || fail "no ctld decision line (current 3, desired 3)"
    grep -q '^ctld  *| .*"msg":"leading"' "$tmp/up.err" || fail "ctld does not lead"
fi

# SIGTERM: everything stops, exit 0, nothing left
kill -TERM "$up_pid"
rc=
for _ in $(seq 150); do
    if ! kill -0 "$up_pid" 2>/dev/null; then
        set +e; wait "$up_pid"; rc=$?; set -e
        break
    fi
    sleep 0.1
done
[ -n "$rc" ] || fail "blogctl still running 15 s after SIGTERM"
up_pid=
[ "$rc" = 0 ] || fail "blogctl exited $rc after SIGTERM, want 0"
for p in $children; do
    if kill -0 "$p" 2>/dev/null; then
        fail "child $p ($(cat /proc/"$p"/comm 2>/dev/null)) still running"
    fi
done
# the stop order: lb before the nodes, the nodes before redis
order=$(grep -o 'blogctl: [a-z0-9]* (pid [0-9]*) stopped' "$tmp/up.err" | awk '{print $2}' | tr '\n' ' ')
grep -q "nothing left running" "$tmp/up.err" || fail "no final line"
[ "$(grep -c '^blogscale up: ' "$tmp/up.out")" = 1 ] || fail "readiness line printed more than once"
echo "ok (stopped: $order)"
