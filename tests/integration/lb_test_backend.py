#!/usr/bin/env python3
"""A tiny HTTP/1.1 backend for blog-lb tests (not a test itself).

    lb_test_backend.py --name NAME --port PORT [--delay-ms N]

Every response carries X-Blog-Node: NAME and a JSON body with the node name, the method,
the path, the request headers as received and the size and SHA-256 of the request body,
so tests can inspect what the LB forwarded. Special paths:
  /readyz                 200 (or 503 while the file given by --down-file exists)
  .../slow?ms=N           waits N ms before answering
  .../chunked             answers with a chunked body
  ...?die=FILE            exits at once without answering unless FILE exists (creates it)
Keep-alive (HTTP/1.1) and Expect: 100-continue are supported (http.server does both).
"""
import argparse
import hashlib
import json
import os
import socketserver
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lb-test-backend"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if te.lower() == "chunked":
            data = b""
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", "0") or "0")
        return self.rfile.read(n) if n else b""

    def _handle(self):
        url = urlsplit(self.path)
        body = self._body()
        if url.path == "/readyz":
            down = self.server.down_file and os.path.exists(self.server.down_file)
            self._send(503 if down else 200, b'{"ready":%s}' % (b"false" if down else b"true"))
            return
        delay = self.server.delay_ms
        q = parse_qs(url.query)
        if "die" in q and not os.path.exists(q["die"][0]):
            # crash in the middle of a request, once (the marker file says it happened)
            open(q["die"][0], "w").close()
            os._exit(1)
        if url.path.endswith("/slow"):
            delay = int(q.get("ms", ["500"])[0])
        if delay:
            time.sleep(delay / 1000.0)
        out = {
            "node": self.server.node_name,
            "method": self.command,
            "path": self.path,
            "version": self.request_version,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_len": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
        }
        data = json.dumps(out).encode()
        if url.path.endswith("/chunked"):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("X-Blog-Node", self.server.node_name)
            self.end_headers()
            if self.command != "HEAD":
                for i in range(0, len(data), 7):
                    part = data[i:i + 7]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
            return
        self._send(200, data)

    def _send(self, status, data):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Blog-Node", self.server.node_name)
        self.send_header("Keep-Alive", "timeout=120")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--down-file", default="")
    a = ap.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.node_name = a.name
    srv.delay_ms = a.delay_ms
    srv.down_file = a.down_file
    print("backend %s listening on %d" % (a.name, a.port), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
