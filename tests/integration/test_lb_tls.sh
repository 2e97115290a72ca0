#!/usr/bin/env bash
# blog-lb TLS termination (docs/LB.md "TLS"), with curl and openssl s_client against
# certificates made here (ECDSA P-256, self-signed): TLS 1.0/1.1 refused, 1.2 and 1.3
# accepted, ALPN http/1.1, SNI picks the certificate (subject CN), resumption (session
# tickets and the session cache: s_client -sess_out then -sess_in says "Reused"), keep-alive
# and a 2 MiB upload through TLS, X-Forwarded-Proto: https, certificates re-read on SIGHUP
# while an established TLS connection keeps working, a bad certificate path and a
# mismatched key refused at start with the path in the message.
set -euo pipefail
LB=${BLOG_LB_BIN:?BLOG_LB_BIN not set}
SRC=${BLOG_SOURCE_DIR:?BLOG_SOURCE_DIR not set}
tmp=$(mktemp -d /tmp/test_lb_tls.XXXXXX)
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

read -r P_TLS P_ADM P1 P2 <<<"$(python3 -c '
import socket
ss=[socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')"
mkcert() {   # $1 name, $2 CN
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -keyout "$tmp/$1.key" -out "$tmp/$1.crt" -subj "/CN=$2" 2>/dev/null
}
mkcert default lb-default
mkcert a a.test
mkcert b b.test

i=0
for p in $P1 $P2; do
    i=$((i + 1))
    python3 "$SRC/tests/integration/lb_test_backend.py" --name "b$i" --port "$p" >"$tmp/b$i.log" 2>&1 &
    pids="$pids $!"
done
for p in $P1 $P2; do
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$p/readyz" >/dev/null && break; sleep 0.1; done
done

write_conf() {   # $1: file, $2: default key path
    cat >"$1" <<YAML
cluster: {name: it}
node: {cache: {enabled: false}}
lb:
  listeners:
    - bind: "127.0.0.1:$P_TLS"
      mode: http
      tls:
        cert: "$tmp/default.crt"
        key: "$2"
        sni:
          - {cert: "$tmp/a.crt", key: "$tmp/a.key"}
          - {cert: "$tmp/b.crt", key: "$tmp/b.key"}
  admin: {bind: "127.0.0.1:$P_ADM"}
  workers: 2
  access_log: false
  health: {interval: 200ms, timeout: 1s, rise: 1, fall: 2}
nodes:
  - {name: b1, addr: "127.0.0.1:$P1"}
  - {name: b2, addr: "127.0.0.1:$P2"}
log: {level: info}
YAML
}

# --- bad certificate path / mismatched key: refused at start, path in the message
write_conf "$tmp/bad.yaml" "$tmp/missing.key"
if "$LB" --config "$tmp/bad.yaml" >"$tmp/bad.log" 2>&1; then fail "started with a missing key"; fi
grep -q "$tmp/missing.key: cannot read the private key" "$tmp/bad.log" || fail "no clear message: $(cat "$tmp/bad.log")"
if "$LB" --config "$tmp/bad.yaml" --check-config >/dev/null 2>&1; then fail "--check-config accepted a missing key"; fi
write_conf "$tmp/bad2.yaml" "$tmp/a.key"
if "$LB" --config "$tmp/bad2.yaml" >"$tmp/bad2.log" 2>&1; then fail "started with a mismatched key"; fi
grep -q "$tmp/a.key and $tmp/default.crt: the private key does not match the certificate" "$tmp/bad2.log" \
    || fail "no clear mismatch message: $(cat "$tmp/bad2.log")"
ok "bad key path and mismatched key refused at start with the path"

write_conf "$tmp/lb.yaml" "$tmp/default.key"
"$LB" --config "$tmp/lb.yaml" >"$tmp/lb.log" 2>&1 &
lb_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$P_ADM/healthz" >/dev/null && break; sleep 0.1; done
grep -q '"mode":"https"' "$tmp/lb.log" || fail "no https listening line"

S="openssl s_client -connect 127.0.0.1:$P_TLS"
# --- versions
for v in tls1 tls1_1; do
    out=$(echo | timeout 10 $S -$v -cipher 'DEFAULT@SECLEVEL=0' 2>&1 || true)
    # (s_client prints "Protocol : TLSv1" in its summary even for a refused handshake)
    if grep -Eq 'New, TLSv1(\.1)?, Cipher is [A-Z]' <<<"$out"; then fail "$v accepted"; fi
    grep -Eq 'alert protocol version|no protocols available|unsupported protocol|Cipher is \(NONE\)' <<<"$out" \
        || fail "$v: no refusal seen: $out"
done
out=$(echo | timeout 10 $S -tls1_2 2>&1 || true)
grep -Eq 'Protocol *: TLSv1\.2' <<<"$out" || fail "TLS 1.2 not accepted: $out"
grep -Eq 'Cipher is ECDHE-ECDSA-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)' <<<"$out" || fail "TLS 1.2 cipher not modern: $out"
out=$(echo | timeout 10 $S -tls1_3 2>&1 || true)
grep -q 'New, TLSv1.3' <<<"$out" || fail "TLS 1.3 not accepted: $out"
ok "TLS 1.0 and 1.1 refused, 1.2 (ECDHE AEAD) and 1.3 accepted"

# --- ALPN
out=$(echo | timeout 10 $S -alpn h2,http/1.1 2>&1 || true)
grep -q 'ALPN protocol: http/1.1' <<<"$out" || fail "ALPN http/1.1 not negotiated: $out"
out=$(echo | timeout 10 $S -alpn h2 2>&1 || true)
grep -q 'No ALPN negotiated' <<<"$out" || fail "h2-only client should get no ALPN: $out"
ok "ALPN http/1.1"

# --- SNI
cn() { echo | timeout 10 $S "$@" 2>/dev/null | sed -n 's/^subject=.*CN *= *//p'; }
[ "$(cn -servername a.test)" = a.test ] || fail "SNI a.test"
[ "$(cn -servername b.test)" = b.test ] || fail "SNI b.test"
[ "$(cn -servername other.test)" = lb-default ] || fail "unknown SNI should get the default"
[ "$(cn -noservername)" = lb-default ] || fail "no SNI should get the default"
ok "SNI picks the certificate (a.test, b.test, default)"

# --- resumption, TLS 1.2 (ticket) and 1.3 (ticket), and 1.2 with the session cache only
for v in tls1_2 tls1_3; do
    rm -f "$tmp/sess.pem"
    printf 'GET /posts/r HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' |
        timeout 10 $S -$v -sess_out "$tmp/sess.pem" -quiet >/dev/null 2>&1 || true
    [ -s "$tmp/sess.pem" ] || fail "$v: no session saved"
    out=$(echo | timeout 10 $S -$v -sess_in "$tmp/sess.pem" 2>&1 || true)
    grep -q "^Reused, TLSv1\.[23]" <<<"$out" || fail "$v: session not resumed: $out"
done
rm -f "$tmp/sess.pem"
echo | timeout 10 $S -tls1_2 -no_ticket -sess_out "$tmp/sess.pem" >/dev/null 2>&1 || true
out=$(echo | timeout 10 $S -tls1_2 -no_ticket -sess_in "$tmp/sess.pem" 2>&1 || true)
grep -q "^Reused, TLSv1\.2" <<<"$out" || fail "session cache (no ticket): not resumed: $out"
ok "resumption reported (tickets 1.2/1.3, session cache)"

# --- requests through TLS: keep-alive, X-Forwarded-Proto, a 2 MiB upload
U=https://127.0.0.1:$P_TLS
codes=$(curl -sk -o /dev/null -o /dev/null -o /dev/null -w '%{http_code}%{num_connects}\n' "$U/posts/a" "$U/posts/b" "$U/posts/c")
[ "$codes" = "$(printf '2001\n2000\n2000')" ] || fail "keep-alive over TLS: $codes"
curl -sk "$U/posts/a" | python3 -c 'import json,sys; h=dict(json.load(sys.stdin)["headers"]); sys.exit(0 if h.get("X-Forwarded-Proto")=="https" else 1)' \
    || fail "X-Forwarded-Proto is not https"
head -c 2097152 /dev/urandom >"$tmp/up.bin"
sha=$(sha256sum "$tmp/up.bin" | cut -d' ' -f1)
curl -sk -XPOST --data-binary @"$tmp/up.bin" -H 'Content-Type: application/octet-stream' "$U/posts" |
    python3 -c 'import json,sys; j=json.load(sys.stdin); sys.exit(0 if j["body_len"]==2097152 and j["body_sha256"]==sys.argv[1] else 1)' "$sha" \
    || fail "2 MiB upload through TLS"
[ "$(curl -sk "$U/posts/x/chunked" -o /dev/null -w '%{http_code}')" = 404 ] || fail "LB 404 through TLS"
ok "keep-alive, X-Forwarded-Proto: https, 2 MiB upload through TLS"

# --- certificates re-read on SIGHUP; an established TLS connection keeps working
cat >"$tmp/ka.py" <<'PY'
import os, socket, ssl, sys, time
port, flag, go = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="x.invalid")
def req(path):
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < n:
        body += s.recv(65536)
    return head.split(b" ")[1].decode()
a = req(b"/posts/before")
open(flag, "w").close()
end = time.time() + 15
while not os.path.exists(go) and time.time() < end:
    time.sleep(0.05)
b = req(b"/posts/after")
print(a, b)
PY
python3 "$tmp/ka.py" "$P_TLS" "$tmp/flag" "$tmp/go" >"$tmp/ka.out" 2>&1 &
ka=$!
for _ in $(seq 100); do [ -e "$tmp/flag" ] && break; sleep 0.05; done
mkcert default lb-renewed
kill -HUP "$lb_pid"
for _ in $(seq 50); do grep -q 'reloaded the node set' "$tmp/lb.log" && break; sleep 0.1; done
[ "$(cn -noservername)" = lb-renewed ] || fail "new certificate not served after SIGHUP"
touch "$tmp/go"
wait $ka || fail "keep-alive client: $(cat "$tmp/ka.out")"
[ "$(cat "$tmp/ka.out")" = "200 200" ] || fail "established TLS connection across the reload: $(cat "$tmp/ka.out")"
ok "certificates re-read on SIGHUP, established TLS connection kept"

# --- a reload with a bad certificate keeps the old context
mv "$tmp/default.key" "$tmp/default.key.bak"
kill -HUP "$lb_pid"
for _ in $(seq 50); do grep -q 'cannot read the private key' "$tmp/lb.log" && break; sleep 0.1; done
grep -q 'reload: .*cannot read the private key.*the running configuration stays' "$tmp/lb.log" || fail "bad reload not logged"
[ "$(cn -noservername)" = lb-renewed ] || fail "TLS listener broken by a bad reload"
mv "$tmp/default.key.bak" "$tmp/default.key"
ok "a reload with a missing key is rejected, TLS keeps serving"

kill -TERM "$lb_pid"
wait "$lb_pid" || fail "blog-lb exit status $?"
lb_pid=
grep -Eq 'AddressSanitizer|ThreadSanitizer|runtime error|LeakSanitizer' "$tmp/lb.log" && fail "sanitizer report"
ok "clean exit"
