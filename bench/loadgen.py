"""A small HTTP/1.1 keep-alive load generator, for machines without ``wrk``.

    loadgen.py HOST PORT [--connections 32] [--duration 5] [--processes 1] [--close]

Each process runs its share of the connections on one asyncio loop; every connection sends
a GET, reads the whole response (Content-Length), and sends the next. With --close, every
request says "Connection: close" and goes on a new connection. Prints one JSON line:
{"rps", "p50_ms", "p99_ms", "errors", "requests"}. Far slower than wrk: it saturates a
core long before a fast server does, so figures from it understate the server's capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
REQUEST_CLOSE = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


async def _connection(
    host: str, port: int, deadline: float, lat: list[float], close: bool = False
) -> int:
    errors = 0
    request = REQUEST_CLOSE if close else REQUEST
    while time.perf_counter() < deadline:
        try:
            r, w = await asyncio.open_connection(host, port)
        except OSError:
            errors += 1
            await asyncio.sleep(0.01)
            continue
        try:
            while (t0 := time.perf_counter()) < deadline:
                w.write(request)
                head = await r.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await r.readexactly(length)
                lat.append(time.perf_counter() - t0)
                if close:
                    break
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
        finally:
            w.close()
    return errors


async def _run(
    host: str, port: int, connections: int, duration: float, close: bool
) -> tuple[list[float], int]:
    deadline = time.perf_counter() + duration
    lat: list[float] = []
    errors = await asyncio.gather(
        *(_connection(host, port, deadline, lat, close) for _ in range(connections))
    )
    return lat, sum(errors)


def _worker(args: tuple[str, int, int, float, bool]) -> tuple[list[float], int]:
    return asyncio.run(_run(*args))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--close", action="store_true", help="a new connection per request")
    a = p.parse_args()
    share = [
        a.connections // a.processes + (i < a.connections % a.processes) for i in range(a.processes)
    ]
    with multiprocessing.Pool(a.processes) as pool:
        results = pool.map(_worker, [(a.host, a.port, n, a.duration, a.close) for n in share if n])
    lat = sorted(x for r in results for x in r[0])
    errors = sum(r[1] for r in results)
    if not lat:
        print(
            json.dumps({"rps": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "errors": errors, "requests": 0})
        )
        return
    out = {
        "rps": len(lat) / a.duration,
        "p50_ms": lat[len(lat) // 2] * 1e3,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3,
        "errors": errors,
        "requests": len(lat),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
