"""What one unary call costs a grpc.aio server in CPU, with a handler that does nothing: the
floor under every heartbeat and status report a shoal manager answers.

The fleet bench measured a leader's CPU with 1,000 idle nodes at three heartbeat periods
(``bench/fleet.py --phases settled --heartbeat 10s|5s|2s``): 0.60 ms of the leader's CPU a
heartbeat. This says how much of that is gRPC's own: the server (a child process, so its CPU
is its own) answers a trivial method, plaintext or over mutual TLS, with one call in flight
(calls spread out, as heartbeats are) or many at once (as in a burst of status reports).

Run: .venv/bin/python bench/grpc_unary_cost.py [--calls 20000]
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import checkout_path  # noqa: F401  (first: this checkout's tests/ and src/)
import grpc
import grpc.aio
from result_file import RESULTS, run_facts, write_result

from tests.e2e.docker_certs import issue, new_ca
from tests.e2e.harness import free_port

METHOD = "/bench.Echo/Ping"
PAYLOAD = b"x" * 20  # about a heartbeat's request: a session ID
HOST = "127.0.0.1"


def _same(data: bytes) -> bytes:
    return data


def pems(directory: Path) -> tuple[bytes, bytes, bytes]:
    """The CA's certificate, the certificate and its key, as docker_certs.issue wrote them."""
    ca, cert, key = ((directory / name).read_bytes() for name in ("ca.pem", "cert.pem", "key.pem"))
    return ca, cert, key


async def serve(port: int, identity: Path | None) -> None:
    async def ping(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return request

    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(
        ping, request_deserializer=_same, response_serializer=_same
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("bench.Echo", {"Ping": handler}),)
    )
    address = f"{HOST}:{port}"
    if identity is None:
        server.add_insecure_port(address)
    else:
        ca, cert, key = pems(identity / "server")
        server.add_secure_port(
            address,
            grpc.ssl_server_credentials(
                [(key, cert)], root_certificates=ca, require_client_auth=True
            ),
        )
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(identity: Path | None) -> tuple[subprocess.Popen, int]:
    """The server, a process of its own (its CPU is then its own), answering on its port."""
    port = free_port(HOST)
    cmd = [sys.executable, __file__, "--serve", str(port)]
    if identity is not None:
        cmd += ["--identity", str(identity)]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    server.stdout.readline()
    return server, port


async def call(port: int, pid: int, calls: int, in_flight: int, identity: Path | None) -> dict:
    """Server CPU a call, and calls a second, for ``calls`` calls with ``in_flight`` at once
    (each on a channel of its own, as each node has)."""
    options: list[tuple[str, object]] = [("grpc.use_local_subchannel_pool", 1)]
    target = f"{HOST}:{port}"
    if identity is None:
        channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(in_flight)]
    else:
        ca, cert, key = pems(identity / "client")
        creds = grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=key, certificate_chain=cert
        )
        channels = [
            grpc.aio.secure_channel(target, creds, options=options) for _ in range(in_flight)
        ]
    stubs = [
        ch.unary_unary(METHOD, request_serializer=_same, response_deserializer=_same)
        for ch in channels
    ]
    for stub in stubs:  # connected (and the TLS handshake done) before the count starts
        await stub(PAYLOAD)
    left = calls

    async def caller(stub: grpc.aio.UnaryUnaryMultiCallable) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await stub(PAYLOAD)

    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.gather(*(caller(s) for s in stubs))
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    for ch in channels:
        await ch.close()
    return {
        "server_cpu_ms_per_call": round((cpu1 - cpu0) * 1000 / calls, 3),
        "calls_per_second": round(calls / (t1 - t0)),
    }


def run(calls: int) -> list[dict[str, object]]:
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        # A CA, a server certificate for HOST and a client's: mutual TLS as between nodes.
        identity, ca = Path(tmp), new_ca("bench-ca")
        issue(ca, identity / "server", "server", server_ip=HOST)
        issue(ca, identity / "client", "client")
        for tls in (False, True):
            for in_flight in (1, 50):
                server, port = start_server(identity if tls else None)
                try:
                    got = asyncio.run(
                        call(port, server.pid, calls, in_flight, identity if tls else None)
                    )
                finally:
                    server.kill()
                    server.wait()
                row = {"tls": tls, "in_flight": in_flight, "calls": calls, **got}
                print(
                    f"{'mutual TLS' if tls else 'plaintext '}, {in_flight:2d} in flight: "
                    f"{got['server_cpu_ms_per_call']:.3f} ms of server CPU a call, "
                    f"{got['calls_per_second']} calls/s"
                )
                results.append(row)
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--identity", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.identity))
        return
    results = run(args.calls)
    write_result(
        RESULTS / "grpc_unary_cost.json",
        {
            "benchmark": "grpc_unary_cost",
            "grpcio": grpc.__version__,
            "results": results,
            **run_facts(),
        },
    )


if __name__ == "__main__":
    main()
