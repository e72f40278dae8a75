#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of the test bed's S3, for the fault tests.

It forwards each request byte for byte to the upstream (Host header and all, so SigV4 signatures
still verify) and relays the answer, except where a fault is set. Python standard library only.

    tools/faultproxy.py --upstream 127.0.0.1:PORT [--port 0] [--control-port 0]

On start it prints one JSON line on standard output: {"port": P, "control_port": C, "upstream": ...}
(port 0 picks a free port). It is controlled at runtime over HTTP on the control port:

    POST /mode   JSON body, replacing the current mode:
                 {"mode": "pass"}
                 {"mode": "fail", "status": 503, "count": 3}    the next 3 matching requests get a 503
                                                                with an S3 XML error body (500, 503,
                                                                429, 404, 403...); no count: all of them
                 {"mode": "slow", "rate": 1000000}              answer bodies at 1 MB/s per response
                 {"mode": "truncate", "after": 65536}           send the headers (full Content-Length)
                                                                and 64 KiB of the body, then close
                 {"mode": "stopped", "seconds": 5}              close every connection and the
                                                                listening socket (connections are
                                                                refused); back to pass after 5 s, or
                                                                at the next POST /mode
                 optional in each: "methods": ["GET"], "prefix": "/bucket/backups/b1/shadow/"
                 (faults hit only matching requests: method, and path without the query; others
                 pass), "count": N (then back to pass)
    GET  /stats  JSON: counters and the request log (time, method, path, Range, fault, status)
    POST /reset  clears counters and the log

Each request goes over its own upstream connection (closed after its answer); the client's
connection stays open between requests (keep-alive) unless a fault closes it.
"""

import argparse
import json
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEAD_LIMIT = 64 * 1024
CHUNK = 64 * 1024
STARTED = time.monotonic()

ERROR_CODES = {
    400: ("BadRequest", "Injected by faultproxy."),
    403: ("AccessDenied", "Access Denied (injected by faultproxy)."),
    404: ("NoSuchKey", "The specified key does not exist (injected by faultproxy)."),
    429: ("SlowDown", "Please reduce your request rate (injected by faultproxy)."),
    500: ("InternalError", "We encountered an internal error. Please try again (injected by faultproxy)."),
    503: ("SlowDown", "Please reduce your request rate (injected by faultproxy)."),
}
REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


class Closed(Exception):
    """The peer closed its connection (or a fault closed it)."""


class Mode:
    def __init__(self, spec):
        self.kind = spec.get("mode", "pass")
        if self.kind not in ("pass", "fail", "slow", "truncate", "stopped"):
            raise ValueError(f"unknown mode {self.kind!r}")
        self.status = int(spec.get("status", 500))
        self.count = spec.get("count")
        self.rate = max(1, int(spec.get("rate", 1_000_000)))
        self.after = max(0, int(spec.get("after", 0)))
        self.seconds = spec.get("seconds")
        self.methods = {m.upper() for m in spec.get("methods") or []}
        self.prefix = spec.get("prefix") or ""
        self.spec = spec

    def matches(self, method, path):
        return (not self.methods or method in self.methods) and path.startswith(self.prefix)


class Proxy:
    def __init__(self, host, port, upstream):
        self.host = host
        self.upstream = upstream
        self.lock = threading.Lock()
        self.mode = Mode({"mode": "pass"})
        self.stats = {"requests": 0, "faults": 0, "bytes_relayed": 0, "connections": 0}
        self.log = []
        self.sockets = set()
        self.listener = None
        self.port = port
        self.generation = 0
        self.listen()

    # --- the listening socket ---------------------------------------------------------------

    def listen(self):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self.accept_loop, args=(listener,), daemon=True).start()

    def accept_loop(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by a stop
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.stats["connections"] += 1
                self.sockets.add(client)
            threading.Thread(target=self.serve, args=(client,), daemon=True).start()

    def stop_listening(self):
        """Refuses new connections and breaks every open one, client and upstream sides."""
        with self.lock:
            listener, self.listener = self.listener, None
            open_sockets = list(self.sockets)
        if listener:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        for s in open_sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def set_mode(self, spec):
        mode = Mode(spec)
        with self.lock:
            self.mode = mode
            self.generation += 1
            generation = self.generation
            listening = self.listener is not None
        if mode.kind == "stopped":
            self.stop_listening()
            if mode.seconds is not None:
                timer = threading.Timer(float(mode.seconds), self.end_stop, args=(generation,))
                timer.daemon = True
                timer.start()
        elif not listening:
            self.listen()

    def end_stop(self, generation):
        with self.lock:
            if generation != self.generation:
                return
        self.set_mode({"mode": "pass"})

    # --- one client connection ----------------------------------------------------------------

    def decide(self, method, path, range_header):
        """The fault for this request (None to pass), counted and logged."""
        with self.lock:
            self.stats["requests"] += 1
            mode = self.mode
            fault = None
            if mode.kind in ("fail", "slow", "truncate") and mode.matches(method, path):
                fault = mode
                self.stats["faults"] += 1
                if mode.count is not None:
                    mode.count -= 1
                    if mode.count <= 0:
                        self.mode = Mode({"mode": "pass"})
            entry = {"t": round(time.monotonic() - STARTED, 4), "method": method, "path": path,
                     "range": range_header, "fault": describe(fault), "status": None}
            self.log.append(entry)
            return fault, entry

    def serve(self, client):
        buffer = bytearray()
        try:
            while True:
                head = read_head(client, buffer)
                if head is None:
                    return
                method, target, headers = parse_head(head)
                path = target.split("?", 1)[0]
                if headers.get("expect", "").lower() == "100-continue":
                    client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                body = read_request_body(client, buffer, headers)
                fault, entry = self.decide(method, path, headers.get("range"))
                if fault is not None and fault.kind == "fail":
                    entry["status"] = fault.status
                    client.sendall(error_answer(fault.status, method, path))
                    continue
                if not self.forward(client, head + body, method, fault, entry):
                    return
        except (Closed, OSError, ValueError):
            return
        finally:
            with self.lock:
                self.sockets.discard(client)
            client.close()

    def forward(self, client, request, method, fault, entry):
        """Sends the request upstream and relays the answer; False when the client connection
        must close (a truncation, or an answer delimited by the end of the connection)."""
        upstream = socket.create_connection(self.upstream, timeout=120)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.lock:
            self.sockets.add(upstream)
        try:
            upstream.sendall(request)
            buffer = bytearray()
            while True:
                head = read_head(upstream, buffer)
                if head is None:
                    raise Closed()
                status = int(head.split(b" ", 2)[1])
                if 100 <= status < 200:
                    continue  # the client already had its 100 Continue from us
                break
            entry["status"] = status
            headers = parse_headers(head)
            relay = Relay(self, client, fault)
            relay.send_head(head)
            if method == "HEAD" or status in (204, 304):
                return True
            if "chunked" in headers.get("transfer-encoding", "").lower():
                relay_chunked(upstream, buffer, relay)
                return relay.alive
            if "content-length" in headers:
                relay_exact(upstream, buffer, int(headers["content-length"]), relay)
                return relay.alive
            relay.send(bytes(buffer))
            while relay.alive:
                data = upstream.recv(CHUNK)
                if not data:
                    break
                relay.send(data)
            return False
        finally:
            with self.lock:
                self.sockets.discard(upstream)
            upstream.close()


class Relay:
    """Writes an answer to the client, applying a slow or truncate fault to its body."""

    def __init__(self, proxy, client, fault):
        self.proxy = proxy
        self.client = client
        self.fault = fault
        self.sent = 0
        self.alive = True
        self.started = time.monotonic()

    def send_head(self, head):
        self.client.sendall(head)

    def send(self, data):
        fault = self.fault
        if not self.alive or not data:
            return
        if fault is not None and fault.kind == "truncate":
            room = fault.after - self.sent
            if room < len(data):
                if room > 0:
                    self.client.sendall(data[:room])
                    self.sent += room
                self.alive = False
                self.client.shutdown(socket.SHUT_RDWR)  # Content-Length promised more: a short body
                return
        if fault is not None and fault.kind == "slow":
            step = max(1, min(CHUNK, fault.rate // 20))
            for start in range(0, len(data), step):
                piece = data[start:start + step]
                self.client.sendall(piece)
                self.sent += len(piece)
                ahead = self.sent / fault.rate - (time.monotonic() - self.started)
                if ahead > 0:
                    time.sleep(ahead)
        else:
            self.client.sendall(data)
            self.sent += len(data)
        with self.proxy.lock:
            self.proxy.stats["bytes_relayed"] += len(data)


# --- HTTP framing -----------------------------------------------------------------------------

def read_head(sock, buffer):
    """The bytes of a message head (through its blank line), taken from `buffer` and `sock`;
    None when the connection ends before a new message starts."""
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            head = bytes(buffer[:end + 4])
            del buffer[:end + 4]
            return head
        if len(buffer) > HEAD_LIMIT:
            raise ValueError("message head too large")
        data = sock.recv(CHUNK)
        if not data:
            if buffer:
                raise Closed()
            return None
        buffer += data


def parse_headers(head):
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        if b":" in line:
            name, value = line.split(b":", 1)
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return headers


def parse_head(head):
    first = head.split(b"\r\n", 1)[0].decode("latin-1")
    method, target, _ = first.split(" ", 2)
    return method.upper(), target, parse_headers(head)


def take(sock, buffer, count):
    while len(buffer) < count:
        data = sock.recv(CHUNK)
        if not data:
            raise Closed()
        buffer += data
    data = bytes(buffer[:count])
    del buffer[:count]
    return data


def take_line(sock, buffer):
    while b"\r\n" not in buffer:
        data = sock.recv(CHUNK)
        if not data:
            raise Closed()
        buffer += data
    end = buffer.find(b"\r\n") + 2
    line = bytes(buffer[:end])
    del buffer[:end]
    return line


def read_request_body(sock, buffer, headers):
    """A request body as raw bytes (chunked bodies kept chunked)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        out = bytearray()
        while True:
            line = take_line(sock, buffer)
            out += line
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:
                    trailer = take_line(sock, buffer)
                    out += trailer
                    if trailer == b"\r\n":
                        return bytes(out)
            out += take(sock, buffer, size + 2)
    length = int(headers.get("content-length", "0") or 0)
    return take(sock, buffer, length) if length else b""


def relay_exact(upstream, buffer, length, relay):
    remaining = length
    if buffer:
        piece = bytes(buffer[:remaining])
        del buffer[:len(piece)]
        relay.send(piece)
        remaining -= len(piece)
    while remaining > 0 and relay.alive:
        data = upstream.recv(min(CHUNK, remaining))
        if not data:
            raise Closed()
        relay.send(data)
        remaining -= len(data)


def relay_chunked(upstream, buffer, relay):
    while relay.alive:
        line = take_line(upstream, buffer)
        relay.send(line)
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while relay.alive:
                trailer = take_line(upstream, buffer)
                relay.send(trailer)
                if trailer == b"\r\n":
                    return
            return
        relay.send(take(upstream, buffer, size + 2))


def error_answer(status, method, path):
    code, message = ERROR_CODES.get(status, (f"HTTP{status}", "Injected by faultproxy."))
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<Resource>{path}</Resource><RequestId>faultproxy</RequestId></Error>").encode()
    head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {len(body)}\r\nx-amz-request-id: faultproxy\r\nConnection: keep-alive\r\n\r\n").encode()
    return head if method == "HEAD" else head + body


def describe(fault):
    if fault is None:
        return None
    if fault.kind == "fail":
        return f"fail {fault.status}"
    if fault.kind == "slow":
        return f"slow {fault.rate}"
    return f"truncate {fault.after}"


# --- the control endpoint ---------------------------------------------------------------------

def control_handler(proxy):
    class Control(BaseHTTPRequestHandler):
        def answer(self, status, value):
            body = (json.dumps(value) + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path != "/stats":
                return self.answer(404, {"error": "GET /stats"})
            with proxy.lock:
                value = dict(proxy.stats, mode=proxy.mode.spec, port=proxy.port,
                             listening=proxy.listener is not None, log=list(proxy.log))
            self.answer(200, value)

        def do_POST(self):
            text = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/reset":
                with proxy.lock:
                    proxy.log.clear()
                    for key in proxy.stats:
                        proxy.stats[key] = 0
                return self.answer(200, {"ok": True})
            if self.path != "/mode":
                return self.answer(404, {"error": "POST /mode or /reset"})
            try:
                proxy.set_mode(json.loads(text or b"{}"))
            except (ValueError, TypeError, OSError) as e:
                return self.answer(400, {"error": str(e)})
            self.answer(200, {"ok": True, "port": proxy.port})

        def log_message(self, *_args):
            pass

    return Control


def main():
    parser = argparse.ArgumentParser(prog="tools/faultproxy.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the real S3")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="proxy port (0: a free one)")
    parser.add_argument("--control-port", type=int, default=0, help="control port (0: a free one)")
    args = parser.parse_args()
    # A parent may have started us with signals blocked (Foundation's Process on Linux does):
    # SIGTERM and SIGINT must stop the proxy.
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    host, _, port = args.upstream.rpartition(":")
    proxy = Proxy(args.host, args.port, (host or "127.0.0.1", int(port)))
    control = ThreadingHTTPServer((args.host, args.control_port), control_handler(proxy))
    control.daemon_threads = True
    print(json.dumps({"port": proxy.port, "control_port": control.server_address[1], "upstream": args.upstream}),
          flush=True)
    try:
        control.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
