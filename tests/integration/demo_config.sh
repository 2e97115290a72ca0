# Sourced by the blogctl tests: writes a copy of examples/local.yaml that uses free
# loopback ports and a private data dir, so tests can run side by side and beside a demo.
# Usage: demo_config SRC_YAML DST_YAML DATA_DIR
# Sets p_lb p_admin p_n1 p_n2 p_n3 p_redis p_ctld. Fails if the demo file gains an address
# this map does not rewrite (a missed port once let two tests share blog-ctld's).
demo_config() {
    local ports
    ports=$(python3 -c '
import socket
ss = [socket.socket() for _ in range(7)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
    read -r p_lb p_admin p_n1 p_n2 p_n3 p_redis p_ctld <<<"$ports"
    python3 - "$1" "$2" "$3" "$p_lb" "$p_admin" "$p_n1" "$p_n2" "$p_n3" "$p_redis" "$p_ctld" <<'PY'
import re, sys
src, dst, data, lb, admin, n1, n2, n3, redis, ctld = sys.argv[1:]
m = {"8080": lb, "8404": admin, "9101": n1, "9102": n2, "9103": n3, "6390": redis, "8405": ctld}
t = open(src).read()
missed = sorted(set(re.findall(r"127\.0\.0\.1:(\d+)", t)) - set(m))
assert not missed, "demo_config.sh: no free port mapped for 127.0.0.1:%s" % missed
t = re.sub(r"127\.0\.0\.1:(\d+)", lambda x: "127.0.0.1:" + m[x.group(1)], t)
assert "/var/tmp/blogscale-demo/data" in t
t = t.replace("/var/tmp/blogscale-demo/data", data)
open(dst, "w").write(t)
PY
}
