"""Many small objects into the test bed's S3 from several writers, over plain sockets.

A writer is a thread with its own TCP connection (kept alive, or a new one per object), sending
SigV4-signed PUTs (tools/testbed.py's signing) with or without `Expect: 100-continue`. Plain sockets
rather than http.client, so that both are under control and a request the server leaves unanswered
is seen as such (a timeout), not retried.

  put_many(ports, creds, items, writers, keepalive, expect, ...) -> result dict
  numbered(prefix, count, size, folders) -> (key, body) items
"""

import socket
import threading
import time

import testbed


class Unanswered(Exception):
    pass


class Connection:
    """One HTTP/1.1 connection to the S3 port, reopened when the server closes it."""

    def __init__(self, port, timeout):
        self.port, self.timeout = port, timeout
        self.sock = self.reader = None
        self.opened = 0

    def close(self):
        if self.sock:
            self.reader.close()
            self.sock.close()
        self.sock = self.reader = None

    def _open(self):
        self.sock = socket.create_connection((testbed.HOST, self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")
        self.opened += 1

    def _head(self):
        """Reads a status line and headers: (status, {name: value})."""
        line = self.reader.readline()
        if not line:
            raise Unanswered("the server closed the connection")
        status = int(line.split()[1])
        headers = {}
        while True:
            line = self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                return status, headers
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()

    def _body(self, headers):
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.reader.readline().split(b";")[0], 16)
                chunks.append(self.reader.read(size + 2)[:size])
                if size == 0:
                    return b"".join(chunks)
        return self.reader.read(int(headers.get("content-length", "0")))

    def put(self, url, headers, body, keepalive, expect):
        """Sends one PUT; returns (status, body, whether the server sent 100 Continue)."""
        if self.sock is None:
            self._open()
        lines = [f"PUT {url} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
        if expect:
            lines.append("Expect: 100-continue")
        if not keepalive:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        continued = False
        try:
            if expect:
                self.sock.sendall(head)
                status, response_headers = self._head()
                if status == 100:
                    continued = True
                    self.sock.sendall(body)
                    status, response_headers = self._head()
            else:
                self.sock.sendall(head + body)
                status, response_headers = self._head()
            response = self._body(response_headers)
        except (socket.timeout, TimeoutError) as e:
            self.close()
            raise Unanswered(f"no answer within {self.timeout:.0f}s") from e
        except (OSError, Unanswered):
            self.close()
            raise
        if not keepalive or response_headers.get("connection", "").lower() == "close":
            self.close()
        return status, response, continued


def numbered(prefix, count, size=256, folders=1):
    """(key, body) for `count` objects <prefix>/<folder>/<n> of `size` bytes over `folders` folders
    (each new folder is a directory the filer makes)."""
    body = bytes(i % 251 for i in range(size))
    return ((f"{prefix}/{n % folders:05d}/{n:07d}", body) for n in range(count))


def put_many(ports, creds, items, writers, keepalive=True, expect=False, seconds=None, timeout=30.0):
    """PUTs each (key, body) of `items` into the test bed's bucket from `writers` threads (for at
    most `seconds` if given). Returns objects/s, latency percentiles, failures, connections opened."""
    items = iter(items)
    items_lock = threading.Lock()
    latencies, failures, statuses = [], [], {}
    opened = [0]
    result_lock = threading.Lock()
    stop_at = time.monotonic() + seconds if seconds else None

    def writer():
        conn = Connection(ports["s3"], timeout)
        try:
            while stop_at is None or time.monotonic() < stop_at:
                with items_lock:
                    item = next(items, None)
                if item is None:
                    return
                key, body = item
                url, headers = testbed.s3_signed("PUT", f"/{testbed.BUCKET}/{key}", ports, creds, body)
                started = time.monotonic()
                try:
                    status, response, _ = conn.put(url, headers, body, keepalive, expect)
                except (OSError, Unanswered) as e:
                    with result_lock:
                        failures.append(f"{type(e).__name__}: {e}")
                    continue
                elapsed = time.monotonic() - started
                with result_lock:
                    statuses[status] = statuses.get(status, 0) + 1
                    if status == 200:
                        latencies.append(elapsed)
                    else:
                        failures.append(f"HTTP {status}: {response[:200]!r}")
        finally:
            conn.close()
            with result_lock:
                opened[0] += conn.opened

    threads = [threading.Thread(target=writer, daemon=True) for _ in range(writers)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    latencies.sort()

    def ms(fraction):
        return round(latencies[min(len(latencies) - 1, int(fraction * len(latencies)))] * 1000, 1) if latencies else None

    return {
        "writers": writers, "keepalive": keepalive, "expect_100_continue": expect,
        "stored": len(latencies), "failed": len(failures), "seconds": round(wall, 2),
        "objects_per_s": round(len(latencies) / wall, 1) if wall else None,
        "latency_ms_p50": ms(0.5), "latency_ms_p99": ms(0.99), "latency_ms_max": ms(1.0),
        "connections_opened": opened[0], "statuses": statuses,
        "first_failures": sorted(set(failures))[:3],
    }
