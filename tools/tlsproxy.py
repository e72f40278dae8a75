#!/usr/bin/env python3
"""A TLS-terminating TCP proxy for the TLS tests: TLS on its port, plain TCP to the upstream.

It puts a real TLS endpoint (a certificate made by openssl in the test) in front of the test bed's
ClickHouse HTTP interface or S3, which speak plain HTTP only. Bytes are relayed as they are, so
SigV4 signatures (which cover the Host header) still verify. Python standard library only.

    tools/tlsproxy.py --upstream 127.0.0.1:PORT --cert server.pem --key server.key
                      [--client-ca ca.pem] [--port 0] [--exit-on-stdin-eof]

With --client-ca the proxy requires a client certificate signed by that CA (mutual TLS). On start
it prints one JSON line on standard output: {"port": P, "upstream": "..."} (port 0 picks a free
port). With --exit-on-stdin-eof it ends when its standard input closes (a test that started it
ended, even by a crash). A handshake that fails (an untrusted client, plain HTTP sent to the TLS port) closes that
connection only; the reason goes to standard error.
"""

import argparse
import json
import os
import signal
import socket
import ssl
import sys
import threading

CHUNK = 64 * 1024


def pump(source, target):
    """Copies source to target until either end closes, then closes both."""
    try:
        while True:
            data = source.recv(CHUNK)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, target):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def linger_close(sock):
    """Closes after reading what the client sent, as a graceful server does: closing with unread
    bytes makes the kernel reset the connection, and the client may lose the TLS alert sent."""
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(2)
        while sock.recv(CHUNK):
            pass
    except OSError:
        pass
    sock.close()


def serve(context, raw, upstream):
    try:
        client = context.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError) as error:
        print(f"tlsproxy: handshake failed: {error}", file=sys.stderr, flush=True)
        linger_close(raw)
        return
    try:
        target = socket.create_connection(upstream, timeout=120)
    except OSError as error:
        print(f"tlsproxy: upstream {upstream}: {error}", file=sys.stderr, flush=True)
        client.close()
        return
    target.settimeout(None)
    for s in (client, target):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    back = threading.Thread(target=pump, args=(target, client), daemon=True)
    back.start()
    pump(client, target)
    back.join()
    client.close()
    target.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="HOST:PORT speaking plain TCP")
    parser.add_argument("--cert", required=True, help="the server's certificate chain (PEM)")
    parser.add_argument("--key", required=True, help="the server's private key (PEM)")
    parser.add_argument("--client-ca", help="require client certificates signed by this CA (PEM)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--exit-on-stdin-eof", action="store_true")
    args = parser.parse_args()
    host, _, port = args.upstream.rpartition(":")
    upstream = (host, int(port))

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(args.client_ca)

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(128)
    print(json.dumps({"port": listener.getsockname()[1], "upstream": args.upstream}), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.exit_on_stdin_eof:
        threading.Thread(target=lambda: (sys.stdin.buffer.read(), os._exit(0)), daemon=True).start()
    while True:
        raw, _ = listener.accept()
        # The handshake runs on the connection's thread: a slow client never blocks the others.
        threading.Thread(target=serve, args=(context, raw, upstream), daemon=True).start()


if __name__ == "__main__":
    main()
