"""A mesh client for namespace tests, run inside a network namespace.

    client.py HOST PORT [--count N] [--retry] [--udp | --http] [--until-eof] [--timeout S]

Makes N connections one after another (TCP: read the backend's name line, check an echo;
UDP: one datagram from a fresh socket, expect "name:..."; HTTP: GET / on a fresh
connection, the name is the answer's first word as tests/e2e/apps/whoami.py gives it),
retrying a failed one once if --retry. With --until-eof it keeps going until its standard input closes (after printing
"started" once the first request succeeded). Prints one JSON line:
{"names": {name: count}, "first_failures": n, "failures": [...]}.
"""

import argparse
import json
import select
import socket
import sys
from collections import Counter

TIMEOUT = 5.0  # seconds per request (--timeout)


def tcp_request(host: str, port: int) -> str:
    with socket.create_connection((host, port), timeout=TIMEOUT) as s:
        f = s.makefile("rb")
        name = f.readline().decode().strip()
        if not name:
            raise ConnectionError("no answer")
        s.sendall(b"ping\n")
        if f.readline() != b"ping\n":
            raise ConnectionError("no echo")
        return name


def http_request(host: str, port: int) -> str:
    with socket.create_connection((host, port), timeout=TIMEOUT) as s:
        s.sendall(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        f = s.makefile("rb")
        status = f.readline().split()
        if status[1:2] != [b"200"]:
            raise ConnectionError(f"bad answer {status!r}")
        while f.readline().strip():  # headers
            pass
        name = f.read().decode().split()
        if not name:
            raise ConnectionError("empty answer")
        return name[0]


def udp_request(host: str, port: int) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(min(2.0, TIMEOUT))
        s.connect((host, port))
        s.send(b"ping")
        data = s.recv(1000)
        name, _, rest = data.partition(b":")
        if rest != b"ping":
            raise ConnectionError(f"bad answer {data!r}")
        return name.decode()


def stdin_closed() -> bool:
    r, _, _ = select.select([sys.stdin], [], [], 0)
    return bool(r) and not sys.stdin.buffer.read1(1024)


def main() -> None:
    global TIMEOUT
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--retry", action="store_true")
    p.add_argument("--udp", action="store_true")
    p.add_argument("--http", action="store_true")
    p.add_argument("--until-eof", action="store_true")
    p.add_argument("--timeout", type=float, default=TIMEOUT)
    args = p.parse_args()
    TIMEOUT = args.timeout
    request = udp_request if args.udp else http_request if args.http else tcp_request
    names: Counter[str] = Counter()
    first_failures = 0
    failures: list[str] = []
    i = 0
    while True:
        if args.until_eof:
            if stdin_closed() or i >= 100_000:
                break
        elif i >= args.count:
            break
        i += 1
        try:
            names[request(args.host, args.port)] += 1
        except OSError as e:
            first_failures += 1
            if not args.retry:
                failures.append(repr(e))
                continue
            try:
                names[request(args.host, args.port)] += 1
            except OSError as e2:
                failures.append(repr(e2))
        if args.until_eof and i == 1:
            print("started", flush=True)
    result = {"names": dict(names), "first_failures": first_failures, "failures": failures}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
