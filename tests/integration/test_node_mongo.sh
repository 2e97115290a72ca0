#!/usr/bin/env bash
# Two blog-node processes on the mongodb store driver, against FerretDB (scripts/ferretdb.sh):
#  1. the API through real HTTP: create on n1, read on n2, list, PUT/DELETE with If-Match
#     (412 on a stale ETag), an asset round trip byte-exact across nodes;
#  2. the database stops under a light write load: both nodes answer 503 store_unavailable
#     (with Retry-After) and /readyz 503;
#  3. it restarts on the same port and data dir: both nodes recover without a restart of
#     their own, and every acknowledged (201) write is still there.
# Fails - never skips - when FerretDB cannot be built or started.
set -euo pipefail

src=${BLOG_SOURCE_DIR:?BLOG_SOURCE_DIR is not set (run through ctest)}
node_bin=${BLOG_NODE_BIN:?BLOG_NODE_BIN is not set (run through ctest)}
fdb=$src/scripts/ferretdb.sh
TOKEN=it-mongo-token

tmp=$(mktemp -d /tmp/blog-node-mongo.XXXXXX)
fdb_pid="" n1_pid="" n2_pid="" load_pid=""
cleanup() {
    local p
    for p in $load_pid $n1_pid $n2_pid; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in $load_pid $n1_pid $n2_pid; do
        wait "$p" 2>/dev/null || true
    done
    if [[ -n $fdb_pid ]]; then
        "$fdb" stop "$fdb_pid" || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    for f in "$tmp"/n1.log "$tmp"/n2.log; do
        [[ -f $f ]] && { echo "--- tail of $f" >&2; tail -n 15 "$f" >&2; }
    done
    exit 1
}

free_port() {
    # Below the kernel's ephemeral range (32768+ here), so no client socket holds it; no
    # socket of any state may use it.
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        if ! ss -Htan "sport = :$p" | grep -q .; then
            echo "$p"
            return
        fi
    done
}

# req METHOD URL [curl args...]: sets STATUS, BODY (file $tmp/body), HDRS (file $tmp/hdrs)
req() {
    local m=$1 u=$2
    shift 2
    STATUS=$(curl -sS -o "$tmp/body" -D "$tmp/hdrs" -w '%{http_code}' --max-time 10 \
        -X "$m" "$@" "$u" || echo 000)
    BODY=$(cat "$tmp/body" 2>/dev/null || true)
}
expect() {
    [[ $STATUS == "$1" ]] || fail "$2: expected $1, got $STATUS: $BODY"
}
header() {
    grep -i "^$1:" "$tmp/hdrs" | tail -n 1 | cut -d: -f2- | tr -d ' \r'
}
wait_status() {   # URL STATUS SECONDS
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        req GET "$1"
        [[ $STATUS == "$2" ]] && return 0
        sleep 0.1
    done
    return 1
}

# ---- FerretDB and two nodes
"$fdb" build >/dev/null
eval "$("$fdb" start --dir "$tmp/fdb")"
fdb_pid=$FERRETDB_PID
fdb_port=$FERRETDB_PORT
echo "# FerretDB at $FERRETDB_URI (pid $fdb_pid)"

p1=$(free_port)
p2=$(free_port)
while [[ $p2 == "$p1" ]]; do p2=$(free_port); done
hash=$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)
for n in n1 n2; do
    cat >"$tmp/$n.yaml" <<EOF
cluster:
  name: itmongo
  write_tokens_sha256: ["$hash"]
node:
  threads: 4
  shutdown_timeout: 5s
  store: {driver: mongodb, uri: "$FERRETDB_URI", database: blog_it,
          write_concern: majority, read_preference: primary,
          server_selection_timeout: 1s, socket_timeout: 10s}
  cache: {enabled: false}
  limits: {post_body: 64KiB, asset: 4MiB}
  assets: {types: [image/png, application/pdf]}
nodes:
  - {name: n1, addr: "127.0.0.1:$p1"}
  - {name: n2, addr: "127.0.0.1:$p2"}
log: {level: info}
EOF
done
"$node_bin" --config "$tmp/n1.yaml" --name n1 >>"$tmp/n1.log" 2>&1 &
n1_pid=$!
"$node_bin" --config "$tmp/n2.yaml" --name n2 >>"$tmp/n2.log" 2>&1 &
n2_pid=$!
N1=http://127.0.0.1:$p1
N2=http://127.0.0.1:$p2
wait_status "$N1/readyz" 200 60 || fail "n1 not ready"
wait_status "$N2/readyz" 200 60 || fail "n2 not ready"
grep -q '"driver\|mongodb' "$tmp/n1.log" || true

AUTH=(-H "Authorization: Bearer $TOKEN")
JSON=(-H "Content-Type: application/json")

# ---- 1. the API on the mongodb driver
req POST "$N1/posts" "${AUTH[@]}" "${JSON[@]}" \
    --data '{"title":"Hello Mongo","body":"first","author":"Ada","tags":["db","wire"]}'
expect 201 "create on n1"
id=$(jq -r .id <<<"$BODY")
etag1=$(header ETag)
[[ $id =~ ^[0-9a-f]{24}$ ]] || fail "create: bad id '$id'"
[[ $(jq -r .version <<<"$BODY") == 1 ]] || fail "create: version is not 1"
[[ $(header Location) == "/posts/$id" ]] || fail "create: Location is '$(header Location)'"

req GET "$N2/posts/$id"
expect 200 "get on n2"
[[ $(jq -r .title <<<"$BODY") == "Hello Mongo" ]] || fail "get on n2: wrong title: $BODY"
[[ $(jq -r '.tags | join(",")' <<<"$BODY") == "db,wire" ]] || fail "get on n2: wrong tags"
[[ $(header ETag) == "$etag1" ]] || fail "get on n2: ETag $(header ETag) != $etag1"

# ObjectIds order by their seconds field; two processes creating posts within one second
# may interleave (docs/STORE.md), so the second post is created in a later second.
sleep 1.1
req POST "$N2/posts" "${AUTH[@]}" "${JSON[@]}" --data '{"title":"Second","body":"b","author":"Bo","tags":[]}'
expect 201 "create on n2"
id2=$(jq -r .id <<<"$BODY")
req GET "$N1/posts?limit=2"
expect 200 "list"
[[ $(jq -r '[.posts[].id] | join(",")' <<<"$BODY") == "$id2,$id" ]] || fail "list order: $BODY"
req GET "$N1/posts?limit=1"
cursor=$(jq -r .next_cursor <<<"$BODY")
req GET "$N2/posts?limit=1&cursor=$cursor"
expect 200 "list with a cursor"
[[ $(jq -r '.posts[0].id' <<<"$BODY") == "$id" ]] || fail "cursor page: $BODY"

put='{"title":"Hello again","body":"second","author":"Ada","tags":[]}'
req PUT "$N2/posts/$id" "${AUTH[@]}" "${JSON[@]}" -H 'If-Match: "not-the-etag"' --data "$put"
expect 412 "PUT with a wrong If-Match"
req PUT "$N2/posts/$id" "${AUTH[@]}" "${JSON[@]}" -H "If-Match: $etag1" --data "$put"
expect 200 "PUT with If-Match"
[[ $(jq -r .version <<<"$BODY") == 2 ]] || fail "PUT: version is not 2: $BODY"
etag2=$(header ETag)
req PUT "$N1/posts/$id" "${AUTH[@]}" "${JSON[@]}" -H "If-Match: $etag1" --data "$put"
expect 412 "PUT with the stale ETag on the other node"
req GET "$N1/posts/$id"
[[ $(jq -r .title <<<"$BODY") == "Hello again" && $(jq -r .version <<<"$BODY") == 2 ]] \
    || fail "after PUT, n1 reads: $BODY"
req DELETE "$N1/posts/$id" "${AUTH[@]}" -H "If-Match: $etag1"
expect 412 "DELETE with a stale If-Match"
req DELETE "$N1/posts/$id" "${AUTH[@]}" -H "If-Match: $etag2"
expect 204 "DELETE with If-Match"
req GET "$N2/posts/$id"
expect 404 "GET after DELETE"

head -c 2500000 /dev/urandom >"$tmp/asset.bin"
sha=$(sha256sum "$tmp/asset.bin" | cut -d' ' -f1)
req POST "$N1/assets" "${AUTH[@]}" -H "Content-Type: image/png" --data-binary "@$tmp/asset.bin"
expect 201 "asset upload"
[[ $(jq -r .id <<<"$BODY") == "$sha" ]] || fail "asset id is not the sha256: $BODY"
req POST "$N2/assets" "${AUTH[@]}" -H "Content-Type: image/png" --data-binary "@$tmp/asset.bin"
[[ $STATUS == 200 || $STATUS == 201 ]] || fail "asset re-upload: $STATUS $BODY"
[[ $(jq -r .id <<<"$BODY") == "$sha" ]] || fail "same bytes, other id: $BODY"
curl -sS --max-time 10 -o "$tmp/asset.back" -D "$tmp/hdrs" "$N2/assets/$sha"
cmp -s "$tmp/asset.bin" "$tmp/asset.back" || fail "asset bytes differ after the round trip"
[[ $(header Content-Type) == image/png* ]] || fail "asset type: $(header Content-Type)"
# The same new bytes stored by both nodes at once (chunk upserts and the metadata insert
# race): both succeed with the same id, and the stored bytes are exact.
for round in 1 2 3; do
    head -c 3300000 /dev/urandom >"$tmp/race.bin"
    rsha=$(sha256sum "$tmp/race.bin" | cut -d' ' -f1)
    up=()
    for n in 1 2; do
        u=$N1
        ((n == 2)) && u=$N2
        curl -sS --max-time 20 -o "$tmp/race.$n" -w '%{http_code}' -X POST \
            -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/pdf" \
            --data-binary "@$tmp/race.bin" "$u/assets" >"$tmp/race.$n.status" &
        up+=($!)
    done
    wait "${up[@]}" || true
    for n in 1 2; do
        st=$(cat "$tmp/race.$n.status")
        [[ $st == 200 || $st == 201 ]] || fail "concurrent asset upload $n: $st $(cat "$tmp/race.$n")"
        [[ $(jq -r .id "$tmp/race.$n") == "$rsha" ]] || fail "concurrent upload $n: wrong id"
    done
    curl -sS --max-time 10 -o "$tmp/race.back" "$N1/assets/$rsha"
    cmp -s "$tmp/race.bin" "$tmp/race.back" || fail "concurrently stored asset differs"
done
echo "ok 1 - API on the mongodb driver (2 nodes)"

# ---- 2. outage under a light load
acked=$tmp/acked
: >"$acked"
load() {
    local i=0 s id
    while :; do
        i=$((i + 1))
        if ((i % 2)); then u=$N1; else u=$N2; fi
        s=$(curl -sS -o "$tmp/load.body" -w '%{http_code}' --max-time 10 -X POST \
            -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
            --data "{\"title\":\"load $i\",\"body\":\"b\",\"author\":\"L\",\"tags\":[]}" \
            "$u/posts" 2>/dev/null || echo 000)
        if [[ $s == 201 ]]; then
            id=$(jq -r .id "$tmp/load.body")
            echo "$id" >>"$acked"
        fi
        echo "$s" >>"$tmp/load.status"
        sleep 0.02
    done
}
load &
load_pid=$!
sleep 2
before=$(wc -l <"$acked")
((before > 0)) || fail "no write acknowledged before the outage"

"$fdb" stop "$fdb_pid"
fdb_pid=""
echo "# FerretDB stopped after $before acknowledged writes"
req POST "$N1/posts" "${AUTH[@]}" "${JSON[@]}" --data '{"title":"down","body":"","author":"x","tags":[]}'
expect 503 "POST while the database is down"
[[ $(jq -r .error.code <<<"$BODY") == store_unavailable ]] || fail "503 code: $BODY"
[[ -n $(header Retry-After) ]] || fail "503 without Retry-After"
req GET "$N2/posts/$id2"
expect 503 "uncached GET while the database is down"
[[ $(jq -r .error.code <<<"$BODY") == store_unavailable ]] || fail "503 code on GET: $BODY"
wait_status "$N1/readyz" 503 15 || fail "n1 /readyz did not go 503 (last $STATUS)"
wait_status "$N2/readyz" 503 15 || fail "n2 /readyz did not go 503 (last $STATUS)"
kill -0 "$n1_pid" && kill -0 "$n2_pid" || fail "a node died during the outage"
sleep 1
echo "ok 2 - database down: 503 store_unavailable, /readyz 503"

# ---- 3. restart on the same port and data dir
eval "$("$fdb" start --port "$fdb_port" --dir "$tmp/fdb")"
fdb_pid=$FERRETDB_PID
t0=$(date +%s%N)
wait_status "$N1/readyz" 200 60 || fail "n1 did not recover"
wait_status "$N2/readyz" 200 60 || fail "n2 did not recover"
echo "# both nodes ready again $((($(date +%s%N) - t0) / 1000000)) ms after the restart"
n_before=$(wc -l <"$acked")
for ((i = 0; i < 300; i++)); do
    (($(wc -l <"$acked") > n_before + 1)) && break
    sleep 0.1
done
kill -TERM "$load_pid" 2>/dev/null || true
wait "$load_pid" 2>/dev/null || true
load_pid=""
total=$(wc -l <"$acked")
((total > n_before)) || fail "no write acknowledged after the restart"
grep -qx 503 "$tmp/load.status" || fail "the load never saw a 503 during the outage"
kill -0 "$n1_pid" && kill -0 "$n2_pid" || fail "a node restarted or died"

missing=0
while read -r aid; do
    req GET "$N2/posts/$aid"
    if [[ $STATUS != 200 ]]; then
        echo "lost acknowledged write $aid: $STATUS $BODY" >&2
        missing=$((missing + 1))
    fi
done <"$acked"
((missing == 0)) || fail "$missing of $total acknowledged writes are missing"
req GET "$N1/posts/$id2"
expect 200 "post from before the outage"
curl -sS --max-time 10 -o "$tmp/asset.back2" "$N1/assets/$sha"
cmp -s "$tmp/asset.bin" "$tmp/asset.back2" || fail "asset changed across the restart"
echo "ok 3 - recovered without a node restart; all $total acknowledged writes present" \
    "($(grep -cx 503 "$tmp/load.status") writes refused with 503 meanwhile)"

# Graceful stop: exit 0, and no sanitizer report in the logs (when built with BLOG_SANITIZE).
for n in n1 n2; do
    pid_var=${n}_pid
    kill -TERM "${!pid_var}"
    st=0
    wait "${!pid_var}" || st=$?
    printf -v "$pid_var" '%s' ""
    ((st == 0)) || fail "$n exited $st on SIGTERM"
    if grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmp/$n.log" >&2; then
        fail "$n: sanitizer report"
    fi
done
echo "ok 4 - both nodes stop cleanly"
echo "PASS"
