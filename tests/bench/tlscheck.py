#!/usr/bin/env python3
"""Checks each TLS port: the certificate is the benchmark's own (verified against it
as the only trusted root, for the name localhost), and reports the negotiated
version and cipher and whether a second connection resumes the first one's session.

Usage: tlscheck.py CERT NAME=PORT...   (prints JSON)
"""

import json
import socket
import ssl
import sys

REQUEST = b"GET / HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n"


def connect(ctx, port, session=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
    s.sendall(REQUEST)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    info = {
        "version": s.version(),
        "cipher": s.cipher()[0],
        "status": data.split(b"\r\n", 1)[0].decode(errors="replace"),
        "resumed": s.session_reused,
    }
    session = s.session
    s.close()
    return info, session


def main():
    ctx = ssl.create_default_context(cafile=sys.argv[1])
    out = {}
    for arg in sys.argv[2:]:
        name, port = arg.split("=")
        try:
            first, session = connect(ctx, int(port))
            second, _ = connect(ctx, int(port), session)
            out[name] = {
                "certificate": "bench certificate (verified)",
                "version": first["version"],
                "cipher": first["cipher"],
                "status": first["status"],
                "resumes_sessions": bool(second["resumed"]),
            }
        except (OSError, ssl.SSLError) as e:
            out[name] = {"error": str(e)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
