#!/usr/bin/env python3
"""Opens COUNT keep-alive connections to HOST:PORT, sends one GET on each (Host
header VHOST), reads the whole response, then keeps them all open and idle.
Prints "READY <open> connections" (or "FAILED ...") and holds them until killed.

Usage: idle_conns.py HOST PORT VHOST COUNT
"""

import asyncio
import sys

BATCH = 250  # connections opened concurrently


async def one(host, port, vhost, held):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET / HTTP/1.1\r\nHost: {vhost}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    if status != b"200":
        raise RuntimeError(f"status {status.decode()}")
    held.append((reader, writer))


async def main():
    host, port, vhost, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    held, errors = [], []
    for start in range(0, count, BATCH):
        n = min(BATCH, count - start)
        results = await asyncio.gather(
            *(one(host, port, vhost, held) for _ in range(n)), return_exceptions=True
        )
        errors += [r for r in results if isinstance(r, BaseException)]
    if errors:
        print(f"FAILED {len(errors)} of {count} connections: {errors[0]!r}", flush=True)
    else:
        print(f"READY {len(held)} connections", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main())
