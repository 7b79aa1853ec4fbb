"""Overlay network benchmark, across two nodes: HTTP to a service's VIP, to the task's overlay
address, and to the same server on its node's own address; and the node's resolver.

    sudo .venv/bin/python bench/overlay.py [--duration 5] [--rounds 3] [--connections 32]

Two full ``shoal daemon`` processes, each on a host of its own (a network namespace,
tests/integration/network/netns.py): node1 (manager) runs the client task, node2 (worker)
the server task, on one overlay network. The server is tests/integration/network/apps/
backend.py in HTTP mode. The load generator (``wrk`` if installed, else bench/loadgen.py)
runs inside the client task's network namespace, as the task's own traffic would:

- vip: client task -> the service's VIP (DNAT in the client's namespace) -> VXLAN -> task
- task: client task -> the task's overlay address -> VXLAN -> task
- node: host 1 -> the same server program on host 2's own address (no overlay, no NAT):
  what the two hosts' link gives without the overlay.

Each in two ways: keep-alive (32 connections sending request after request) and
new-connection (every request on a new connection: what the VIP's DNAT costs most).
Then DNS, from inside the client task to its resolver (the node's, on the network's
gateway address): queries for the service's name and ``tasks.<name>`` at a constant 1,000
per second for --duration s (latency p50/p99 over every answer), and at saturation (64 in
flight).

Targets: VIP at least 90% of the task's overlay address (requests per second); DNS p99
under 2 ms at 1,000 q/s. Medians over the rounds; the scenarios interleave round by round.
Writes bench/results/overlay.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Not bench/ itself: its dns.py would stand in for dnspython's package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import wait_for  # noqa: E402
from tests.e2e.netns_cluster import NetnsCluster  # noqa: E402
from tests.integration.network.netns import Testbed, why_no_netns, why_no_nft  # noqa: E402

BACKEND = ROOT / "tests" / "integration" / "network" / "apps" / "backend.py"
LOADGEN = ROOT / "bench" / "loadgen.py"
RESULTS = ROOT / "bench" / "results" / "overlay.json"
NODE_PORT = 9100
VIP_TARGET = 0.90
DNS_P99_TARGET_MS = 2.0


# --- the DNS load, run inside the client task's namespace ------------------------------------


def _query(name: str, qid: int) -> bytes:
    import dns.message

    q = dns.message.make_query(name, "A")
    q.id = qid
    return q.to_wire()


async def dns_constant(server: str, names: list[str], rate: float, duration: float) -> dict:
    """A query every 1/rate s whatever the answers do; latency of every answer."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.connect((server, 53))
    sent: dict[int, float] = {}
    lat: list[float] = []
    wires = [_query(n, 0) for n in names]

    def readable() -> None:
        while True:
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                return
            t0 = sent.pop(int.from_bytes(data[:2], "big"), None)
            if t0 is not None:
                lat.append(time.perf_counter() - t0)

    loop.add_reader(sock.fileno(), readable)
    start = time.perf_counter()
    n = 0
    try:
        while (now := time.perf_counter()) - start < duration:
            due = start + n / rate
            if due > now:
                await asyncio.sleep(due - now)
            qid = n % 65536
            wire = bytearray(wires[n % len(wires)])
            wire[0:2] = qid.to_bytes(2, "big")
            sent[qid] = time.perf_counter()
            sock.send(bytes(wire))
            n += 1
        await asyncio.sleep(0.5)  # the last answers
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()
    lat.sort()
    return {
        "sent": n,
        "answered": len(lat),
        "p50_ms": lat[len(lat) // 2] * 1e3 if lat else None,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3 if lat else None,
    }


async def dns_saturate(server: str, names: list[str], duration: float, inflight: int = 64) -> dict:
    """Closed loop: ``inflight`` queries outstanding; answers per second."""
    loop = asyncio.get_running_loop()
    socks = []
    answered = 0
    rng = random.Random(1)
    for _ in range(8):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        s.connect((server, 53))
        socks.append(s)

    def make_reader(s: socket.socket):  # type: ignore[no-untyped-def]  # a closure per socket
        def readable() -> None:
            nonlocal answered
            while True:
                try:
                    s.recv(4096)
                except BlockingIOError:
                    return
                answered += 1
                s.send(_query(rng.choice(names), rng.randrange(65536)))

        return readable

    for s in socks:
        loop.add_reader(s.fileno(), make_reader(s))
        for _ in range(inflight // len(socks)):
            s.send(_query(rng.choice(names), rng.randrange(65536)))
    await asyncio.sleep(duration)
    for s in socks:
        loop.remove_reader(s.fileno())
        s.close()
    return {"qps": answered / duration}


def watch_main(args: list[str]) -> None:
    """Inside the client task: ask for ``tasks.<service>`` every 10 ms and print, as JSON
    lines, the wall-clock time each time the answer changes (for how fast DNS follows the
    cluster), until killed."""
    import dns.message
    import dns.query

    server, name = args[0], args[1]
    last: list[str] | None = None
    while True:
        try:
            reply = dns.query.udp(dns.message.make_query(name, "A"), server, timeout=0.5)
            addrs = sorted(r.address for rr in reply.answer for r in rr)
        except Exception:
            addrs = []
        if addrs != last:
            print(json.dumps({"t": time.time(), "addrs": addrs}), flush=True)
            last = addrs
        time.sleep(0.01)


def dns_main(args: list[str]) -> None:
    server, names, rate, duration = args[0], args[1].split(","), float(args[2]), float(args[3])

    async def go() -> dict:
        constant = await dns_constant(server, names, rate, duration)
        saturated = await dns_saturate(server, names, min(duration, 5.0))
        return {"constant": constant, "saturation": saturated}

    print(json.dumps(asyncio.run(go())))


# --- the benchmark ---------------------------------------------------------------------------


def in_task(pid: int, argv: list[str]) -> dict:
    r = subprocess.run(
        ["nsenter", "-t", str(pid), "-n", *argv], capture_output=True, text=True, timeout=600
    )
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


WRK_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def wrk_latency(lines: list[str]) -> dict[str, float]:
    """p50_ms and p99_ms from wrk's --latency distribution ("  99%    3.21ms")."""
    found = {}
    for line in lines:
        m = re.fullmatch(r"\s*(50|99)%\s+([\d.]+)(us|ms|s|m)\s*", line)
        if m:
            found[f"p{m[1]}_ms"] = float(m[2]) * WRK_UNITS_MS[m[3]]
    return found


def http_load(
    run_in: list[str], host: str, port: int, args: argparse.Namespace, close: bool
) -> dict:
    wrk = shutil.which("wrk")
    if wrk is not None:
        argv = [wrk, "-t2", f"-c{args.connections}", f"-d{int(args.duration)}s", "--latency"]
        if close:
            argv += ["-H", "Connection: close"]  # wrk opens a new connection for each
        argv.append(f"http://{host}:{port}/")
        out = subprocess.run([*run_in, *argv], capture_output=True, text=True, timeout=600).stdout
        lines = out.splitlines()
        rps = float(next(line.split()[1] for line in lines if line.startswith("Requests/sec")))
        # "Socket errors: connect 0, read 3, write 0, timeout 0". With "Connection: close"
        # wrk counts the server's close after each answer as a read error: one per request,
        # not a failure; connect errors and timeouts are.
        kinds = {
            kind: int(n)
            for line in lines
            if "Socket errors" in line
            for kind, n in re.findall(r"(\w+) (\d+)", line)
        }
        errors = sum(n for kind, n in kinds.items() if not (close and kind == "read"))
        return {"rps": rps, "errors": errors, "socket_errors": kinds, **wrk_latency(lines),
                "tool": "wrk"}  # fmt: skip
    argv = [sys.executable, str(LOADGEN), host, str(port), "--connections", str(args.connections),
            "--duration", str(args.duration), "--processes", "2"]  # fmt: skip
    if close:
        argv.append("--close")
    r = subprocess.run([*run_in, *argv], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return {**json.loads(r.stdout.strip().splitlines()[-1]), "tool": "loadgen.py"}


def measure_convergence(cluster: NetnsCluster, node1, pid: int, gateway: str) -> dict:  # type: ignore[no-untyped-def]  # a harness Node
    """How long after a task is running its address is in the others' DNS answers, and how
    long after a task dies it is out of them (the VIP's backends change with the same
    network map). Wall-clock: the daemons and this process share the machine's clock."""
    watcher = subprocess.Popen(
        ["nsenter", "-t", str(pid), "-n", sys.executable, __file__, "watch", gateway, "tasks.server"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert watcher.stdout is not None
    seen: list[dict] = []

    def next_answer(check) -> dict:  # type: ignore[no-untyped-def]
        while True:
            line = watcher.stdout.readline()  # type: ignore[union-attr]
            if not line:
                raise RuntimeError("the DNS watcher died")
            answer = json.loads(line)
            seen.append(answer)
            if check(answer["addrs"]):
                return answer

    try:
        first = next_answer(lambda a: len(a) == 1)
        node1.cli("service", "scale", "-d", "server=2")
        wait_for(lambda: len(cluster.running_tasks("server")) == 2, what="2 server tasks")
        added = next_answer(lambda a: len(a) == 2)
        new = next(t for t in cluster.running_tasks("server")
                   if t["NetworksAttachments"][0]["Addresses"][0].split("/")[0] not in first["addrs"])  # fmt: skip
        running_at = _timestamp(new["Status"]["Timestamp"])
        victim = new
        killed_at = time.time()
        os.kill(victim["Status"]["ContainerStatus"]["PID"], 9)
        gone = next_answer(lambda a: len(a) == 1)
    finally:
        watcher.kill()
        watcher.wait()
    return {
        "running_to_dns_s": added["t"] - running_at,
        "killed_to_out_of_dns_s": gone["t"] - killed_at,
    }


def _timestamp(text: str) -> float:
    import datetime as dt

    head, _, frac = text.rstrip("Z").partition(".")
    base = dt.datetime.fromisoformat(head).replace(tzinfo=dt.UTC).timestamp()
    return base + (float("0." + frac) if frac else 0.0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--dns-rate", type=float, default=1000.0)
    p.add_argument("--output", type=Path, default=RESULTS)
    args = p.parse_args()
    why = why_no_netns() or why_no_nft()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="shoal-bench-ovl-", dir="/tmp"))
    with Testbed(hosts=2) as bed:
        cluster = NetnsCluster(root, bed)
        try:
            node1 = cluster.add("node1")
            cluster.init()
            cluster.join_worker(cluster.add("node2"))
            node1.cli("network", "create", "-d", "overlay", "bench")
            node1.process_service(
                "--name", "server", "--network", "bench", "--constraint", "node.hostname==node2",
                sys.executable, str(BACKEND), "--name", "server", "--host", "0.0.0.0",
                "--port", "80", "--mode", "http",
            )  # fmt: skip
            node1.process_service(
                "--name", "client", "--network", "bench", "--constraint", "node.hostname==node1",
                "sleep", "3600",
            )  # fmt: skip
            wait_for(lambda: len(cluster.running_tasks("server")) == 1, what="the server task")
            wait_for(lambda: len(cluster.running_tasks("client")) == 1, what="the client task")
            (server,) = cluster.running_tasks("server")
            (client,) = cluster.running_tasks("client")
            pid = client["Status"]["ContainerStatus"]["PID"]
            task_addr = server["NetworksAttachments"][0]["Addresses"][0].split("/")[0]
            vip = node1.get("/services/server")["Endpoint"]["VirtualIPs"][0]["Addr"].split("/")[0]
            gateway = client["NetworksAttachments"][0]["Network"]["IPAMOptions"]["Configs"][0][
                "Gateway"
            ]
            direct = bed.popen(
                2, [sys.executable, str(BACKEND), "--name", "direct", "--host", bed.addr(2),
                    "--port", str(NODE_PORT), "--mode", "http"],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            assert direct.stdout is not None
            direct.stdout.readline()
            task_ns = ["nsenter", "-t", str(pid), "-n"]
            wait_for(lambda: in_task(pid, [sys.executable, "-c", f"import socket,json; socket.create_connection(('{vip}', 80), timeout=2); print(json.dumps({{}}))"]) == {},
                     what="the VIP to answer")  # fmt: skip

            targets = {
                "vip": (task_ns, vip, 80),
                "task": (task_ns, task_addr, 80),
                "node": (bed.argv(1, []), bed.addr(2), NODE_PORT),
            }
            samples: dict[str, list[dict]] = {}
            for rnd in range(args.rounds):
                for mode, close in (("keep-alive", False), ("new-connection", True)):
                    for name, (run_in, host, port) in targets.items():
                        r = http_load(run_in, host, port, args, close)
                        samples.setdefault(f"{mode} {name}", []).append(r)
                        print(
                            f"round {rnd + 1} {mode:14} {name:5} {r['rps']:9.0f} req/s, "
                            f"p50 {r.get('p50_ms', float('nan')):.3f} ms, "
                            f"p99 {r.get('p99_ms', float('nan')):.3f} ms, "
                            f"socket errors {r.get('errors')}",
                            flush=True,
                        )
            convergence = measure_convergence(cluster, node1, pid, gateway)
            dns_runs = []
            for rnd in range(args.rounds):
                r = in_task(pid, [sys.executable, __file__, "dnsload", gateway,
                                  "server,tasks.server", str(args.dns_rate), str(args.duration)])  # fmt: skip
                dns_runs.append(r)
                c = r["constant"]
                print(f"round {rnd + 1} dns {args.dns_rate:.0f} q/s: p50 {c['p50_ms']:.3f} ms, "
                      f"p99 {c['p99_ms']:.3f} ms, answered {c['answered']}/{c['sent']}; "
                      f"saturation {r['saturation']['qps']:.0f} q/s", flush=True)  # fmt: skip
        finally:
            cluster.close()
            shutil.rmtree(root, ignore_errors=True)

    def med(key: str, field: str) -> float:
        return statistics.median(s[field] for s in samples[key] if s.get(field) is not None)

    figures: dict[str, dict[str, float]] = {}
    for key in samples:
        figures[key] = {"rps": med(key, "rps")}
        if "p99_ms" in samples[key][0]:
            figures[key]["p50_ms"] = med(key, "p50_ms")
            figures[key]["p99_ms"] = med(key, "p99_ms")
    ratios = {
        mode: med(f"{mode} vip", "rps") / med(f"{mode} task", "rps")
        for mode in ("keep-alive", "new-connection")
    }
    dns = {
        "rate": args.dns_rate,
        "p50_ms": statistics.median(r["constant"]["p50_ms"] for r in dns_runs),
        "p99_ms": statistics.median(r["constant"]["p99_ms"] for r in dns_runs),
        "answered": sum(r["constant"]["answered"] for r in dns_runs),
        "sent": sum(r["constant"]["sent"] for r in dns_runs),
        "saturation_qps": statistics.median(r["saturation"]["qps"] for r in dns_runs),
    }
    result = {
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
        "duration": args.duration,
        "rounds": args.rounds,
        "connections": args.connections,
        "http": figures,
        "vip_over_task": ratios,
        "dns": dns,
        "convergence": convergence,
        "targets": {
            "vip_over_task": VIP_TARGET,
            "dns_p99_ms": DNS_P99_TARGET_MS,
            "met": all(r >= VIP_TARGET for r in ratios.values())
            and dns["p99_ms"] < DNS_P99_TARGET_MS,
        },
    }
    print()
    for key, fig in figures.items():
        print(f"{key:22} {fig}")
    for mode, r in ratios.items():
        print(f"VIP / task address, {mode}: {r:.1%} (target {VIP_TARGET:.0%})")
    print(f"DNS at {dns['rate']:.0f} q/s: p50 {dns['p50_ms']:.3f} ms, p99 {dns['p99_ms']:.3f} ms "
          f"(target < {DNS_P99_TARGET_MS} ms); saturation {dns['saturation_qps']:.0f} q/s")  # fmt: skip
    print(f"a running task is in DNS after {convergence['running_to_dns_s'] * 1e3:.0f} ms; "
          f"a killed task is out after {convergence['killed_to_out_of_dns_s'] * 1e3:.0f} ms")  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["dnsload"]:
        dns_main(sys.argv[2:])
        sys.exit(0)
    if sys.argv[1:2] == ["watch"]:
        watch_main(sys.argv[2:])
    sys.exit(main())
