"""What passing the engine's endpoints through shoal costs: the same requests against the
Docker Engine's own socket and against a shoal daemon's socket in front of that engine, in one
run, on the same machine.

- requests per second of ``GET /v1.41/containers/json`` (keep-alive connections, several at a
  time, for a fixed time);
- throughput of a 100 MiB ``docker cp`` out of a container (``GET /containers/{id}/archive``,
  a streamed tar), read and dropped by the client.

The client is the same code for both (asyncio over the unix socket, the response read by
Content-Length or chunks), so only the server side differs. The shoal daemon is a node in no
swarm, with the machine's engine behind it; the container is made for the run under a unique
name and removed after it.

Prints a table and writes bench/results/engine_passthrough.json.
Run: .venv/bin/python bench/engine_passthrough.py [--seconds 1 --repeat 15 --connections 8
     --size-mib 100]
"""

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.docker import testimage  # the test image, and where the engine is
from tests.e2e.harness import free_port, wait_for

RESULTS = Path(__file__).parent / "results" / "engine_passthrough.json"
API = "/v1.41"
CHUNK = 1 << 20


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP response; the number of body bytes."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = None
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if length is not None:
        await reader.readexactly(length)
        return length
    total = 0
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return total
            remaining = size
            while remaining:
                part = await reader.read(min(remaining, CHUNK))
                if not part:
                    raise ConnectionError("stream cut short")
                remaining -= len(part)
            total += size
            await reader.readexactly(2)
    while part := await reader.read(CHUNK):
        total += len(part)
    return total


async def requests_per_second(socket: str, path: str, seconds: float, connections: int) -> float:
    request = f"GET {path} HTTP/1.1\r\nHost: docker\r\n\r\n".encode()
    deadline = time.monotonic() + seconds
    counts = [0] * connections

    async def worker(i: int) -> None:
        reader, writer = await asyncio.open_unix_connection(socket, limit=CHUNK * 4)
        try:
            while time.monotonic() < deadline:
                writer.write(request)
                await _read_response(reader)
                counts[i] += 1
        finally:
            writer.close()

    start = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(connections)))
    return sum(counts) / (time.monotonic() - start)


async def stream_mib_per_second(socket: str, path: str) -> tuple[float, int]:
    reader, writer = await asyncio.open_unix_connection(socket, limit=CHUNK * 4)
    try:
        start = time.monotonic()
        writer.write(f"GET {path} HTTP/1.1\r\nHost: docker\r\n\r\n".encode())
        size = await _read_response(reader)
        elapsed = time.monotonic() - start
    finally:
        writer.close()
    return size / (1 << 20) / elapsed, size


def docker(*args: str) -> str:
    return subprocess.run(
        ["docker", "-H", testimage.engine_host(), *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout.strip()


def start_shoal(root: Path) -> tuple[subprocess.Popen, Path]:
    sock = root / "shoal.sock"
    log = open(root / "daemon.log", "ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shoal",
            "daemon",
            "--state-dir",
            str(root / "state"),
            "--socket",
            str(sock),
            "--listen-addr",
            f"127.0.0.1:{free_port('127.0.0.1')}",
            "--no-overlay",
            "--engine-host",
            testimage.engine_host(),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    wait_for(sock.exists, what="shoal's socket")
    return proc, sock


async def measure(args: argparse.Namespace, sockets: dict[str, str], container: str) -> dict:
    results: dict = {"requests_per_second": {}, "cp_mib_per_second": {}, "cp_bytes": {}}
    list_path = f"{API}/containers/json"
    cp_path = f"{API}/containers/{container}/archive?path=/blob"
    for sock in sockets.values():  # warm both up (connections, caches)
        await requests_per_second(sock, list_path, 0.5, args.connections)
    order = list(sockets.items())
    for _ in range(args.repeat):
        # Pairs of short runs, the order swapped each time: the machine's load (shared with
        # other work) drifts, and each pair sees about the same.
        for name, sock in order:
            rps = await requests_per_second(sock, list_path, args.seconds, args.connections)
            results["requests_per_second"].setdefault(name, []).append(rps)
        for name, sock in order:
            rate, size = await stream_mib_per_second(sock, cp_path)
            results["cp_mib_per_second"].setdefault(name, []).append(rate)
            results["cp_bytes"][name] = size
        order.reverse()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per requests/s run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--size-mib", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    if (reason := testimage.unreachable_reason()) is not None:
        sys.exit(reason)
    engine_socket = testimage.engine_host().removeprefix("unix://")

    root = Path(tempfile.mkdtemp(prefix="shoal-bench-pass-", dir="/tmp"))
    container = f"shoal-bench-pass-{uuid.uuid4().hex[:10]}"
    proc = None
    try:
        docker(
            "run",
            "-d",
            "--name",
            container,
            testimage.IMAGE,
            "sh",
            "-c",
            f"dd if=/dev/zero of=/blob bs=1M count={args.size_mib} 2>/dev/null && touch /ready "
            "&& sleep 3600",
        )
        wait_for(
            lambda: (
                subprocess.run(
                    [
                        "docker",
                        "-H",
                        testimage.engine_host(),
                        "exec",
                        container,
                        "test",
                        "-f",
                        "/ready",
                    ],
                    capture_output=True,
                ).returncode
                == 0
            ),
            what="the container's file",
        )
        proc, shoal_socket = start_shoal(root)
        sockets = {"direct": engine_socket, "shoal": str(shoal_socket)}
        results = asyncio.run(measure(args, sockets, container))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        subprocess.run(
            ["docker", "-H", testimage.engine_host(), "rm", "-f", container], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)

    median = {
        key: {name: statistics.median(values) for name, values in results[key].items()}
        for key in ("requests_per_second", "cp_mib_per_second")
    }
    # The median of each pair's ratio: steadier than the ratio of medians on a busy machine.
    ratio = {
        key: statistics.median(
            s / d for s, d in zip(results[key]["shoal"], results[key]["direct"], strict=True)
        )
        for key in median
    }
    report = {
        "benchmark": "engine_passthrough",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "engine": docker("version", "--format", "{{.Server.Version}}"),
        "request": f"GET {API}/containers/json",
        "connections": args.connections,
        "seconds_per_run": args.seconds,
        "cp_size_mib": args.size_mib,
        "repeat": args.repeat,
        "median": median,
        "shoal_over_direct": ratio,
        "runs": results,
    }
    print(f"{'':28}{'direct':>12}{'shoal':>12}{'shoal/direct':>14}")
    rps = median["requests_per_second"]
    print(
        f"{'GET /containers/json (req/s)':28}{rps['direct']:12.0f}{rps['shoal']:12.0f}"
        f"{ratio['requests_per_second']:14.2f}"
    )
    cp = median["cp_mib_per_second"]
    print(
        f"{f'cp {args.size_mib} MiB (MiB/s)':28}{cp['direct']:12.0f}{cp['shoal']:12.0f}"
        f"{ratio['cp_mib_per_second']:14.2f}"
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
