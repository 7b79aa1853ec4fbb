"""Overlay resolver benchmark: DnsServer on loopback, asked by a load generator in another
process.

    .venv/bin/python bench/dns.py [--duration 10] [--rate 1000] [--saturation 5] [--rounds 3]

Three processes: the resolver (shoal.network.dns.DnsServer on 127.0.0.2, serving a table
of 50 services x 20 tasks over 2 networks; ``bench/dns.py serve``), a fake upstream that
answers the forwarded names (tests/integration/network/fake_dns.py on 127.0.0.3;
``bench/dns.py upstream``), and this process, the load generator, asking from 127.0.0.10,
a task on both networks. All share the machine's cores as the scheduler likes, as the
resolver shares a node's cores with the tasks that ask it (``--pin`` puts the resolver on
core 1 and the others on core 0; on a machine with other work that only concentrates it).

The table: services s00..s49 with 20 running tasks each; s00-s29 on "front", s20-s49 on
"back" (s20-s29 on both: the asker's first network answers); every fifth service is
dnsrr, the others have a VIP. The query mix: 40% ``<service>`` (one A for a VIP, 20 for
dnsrr), 40% ``tasks.<service>`` (20 A), 20% names of no service (``extN.example``),
forwarded to the fake upstream, which answers one A. The generator asks the same 100
names over and over, as tasks do: the cache answers nearly every query of ours after the
first of each name; the "no cache" figures are those of names asked for the first time
(or just after their records changed).

Each round measures the resolver with its answer cache (as it runs) and without
(``cache_size=0``: every answer decided and rendered anew), then the upstream alone:

- saturation: queries per second answered while the generator keeps 64 queries in flight
  (8 UDP sockets x 8), closed loop, for the mix and (cached) each kind alone;
- constant rate: a query every 1/rate s whatever the answers do (open loop), for
  ``--duration`` s: latency p50/p90/p99/p99.9/max over every answer, and per kind.
  Latency runs from just before the send to the reply's arrival in the kernel
  (SO_TIMESTAMPNS), so the generator's own waits for the CPU are left out;
- the upstream alone: the forwarded names sent straight to it at the rate the mix
  forwards them, the floor under the forwarded figures;
- the resolver's CPU time per query (its process's user + system time over the queries
  answered), the figure least disturbed by whatever else runs on the machine.

Figures are medians over the rounds. Target: p99 under 2 ms at 1,000 queries per second
(cached). Writes bench/results/dns.json; exits 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
# This file is named dns.py: with its own directory first on the path (as Python puts it
# for a script), "import dns" would import this file rather than dnspython.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import dns.message  # noqa: E402

from shoal.network.dns.records import NetworkRecords, ServiceEntry, TaskEntry  # noqa: E402
from shoal.network.dns.server import DnsServer  # noqa: E402
from tests.integration.network.fake_dns import FakeUpstream  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "dns.json"
SERVER, UPSTREAM, CLIENT = "127.0.0.2", "127.0.0.3", "127.0.0.10"
SERVICES, TASKS = 50, 20
EXTERNAL_NAMES = 10
TARGET_P99_MS = 2.0
MIX = (("service", 0.4), ("tasks", 0.4), ("forwarded", 0.2))
SOCKETS, IN_FLIGHT = 8, 8  # saturation: in flight per socket
RESEND_AFTER = 1.0  # a query lost (no answer in this long) counts as lost and is resent
SERVER_CPU, OTHERS_CPU = 1, 0
# Linux's SO_TIMESTAMPNS (Python does not name it): each datagram received carries the
# time the kernel took it in (CLOCK_REALTIME, a struct timespec). Latency is measured to
# then, not to when this process got round to reading it, so a load generator that waits
# for the CPU does not add its wait to the resolver's figures.
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("qq")


def network(name: str, services: range) -> NetworkRecords:
    net = {"front": 1, "back": 2}[name]
    entries = []
    for s in services:
        tasks = tuple(
            TaskEntry(f"s{s:02}.{t + 1}.task{s:02}x{t:02}", f"10.{net}.{s}.{t + 2}/16")
            for t in range(TASKS)
        )
        mode = "dnsrr" if s % 5 == 0 else "vip"
        vip = f"10.{net}.{s}.1/16" if mode == "vip" else None
        entries.append(ServiceEntry(f"s{s:02}", mode, vip, tasks=tasks))  # type: ignore[arg-type]
    return NetworkRecords.build(name, entries)


def queries(kind: str, n: int, rng: random.Random) -> list[tuple[str, bytes]]:
    """``n`` queries (kind, wire) of ``kind`` ("mix" draws each kind by its share)."""
    kinds, weights = zip(*MIX, strict=True)
    out = []
    for _ in range(n):
        k = rng.choices(kinds, weights)[0] if kind == "mix" else kind
        s = rng.randrange(SERVICES)
        name = {
            "service": f"s{s:02}",
            "tasks": f"tasks.s{s:02}",
            "forwarded": f"ext{rng.randrange(EXTERNAL_NAMES)}.example",
        }[k]
        out.append((k, dns.message.make_query(name, "A").to_wire()))
    return out


# --- the resolver and the upstream, each run as a process of its own ------------------


async def serve_resolver(upstream: str, cache: bool) -> None:
    nets = [network("front", range(0, 30)), network("back", range(20, 50))]
    who = {CLIENT: nets}.get
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((SERVER, 0))
    # Room for a burst of queries while the loop is busy, as a busy node would give it.
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    server = DnsServer(who, [udp], [upstream], cache_size=4096 if cache else 0)
    await server.start()
    await _announce({"port": udp.getsockname()[1], "pid": os.getpid()})


async def serve_upstream() -> None:
    names = {f"ext{i}.example": [f"192.0.2.{i + 1}"] for i in range(EXTERNAL_NAMES)}
    up = await FakeUpstream(UPSTREAM, names).start()
    await _announce({"address": up.address, "pid": os.getpid()})


async def _announce(hello: dict) -> None:
    """Say where we serve, then serve until stdin closes."""
    print(json.dumps(hello), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def start_role(role: str, *args: str, cpu: int | None) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(
        [sys.executable, __file__, role, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    if cpu is not None:
        os.sched_setaffinity(proc.pid, {cpu})
    hello = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
    return proc, hello


# --- the load generator -------------------------------------------------------------

_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)


class Generator:
    """UDP sockets from the asker's address; queries carry an ID per socket that maps to
    what was sent and when."""

    def __init__(self, target: tuple[str, int], sockets: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.target = target
        self.socks = []
        for _ in range(sockets):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((CLIENT, 0))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            s.setblocking(False)
            s.connect(self.target)
            self.socks.append(s)
        # per socket: id -> (kind, sent at)
        self.pending: list[dict[int, tuple[str, float]]] = [{} for _ in self.socks]
        self.next_id = [0] * len(self.socks)
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.truncated = 0
        self.errors = 0
        self.lost = 0
        self.on_answer = None  # called with the socket index after each answer
        for i, s in enumerate(self.socks):
            self.loop.add_reader(s.fileno(), self._readable, i)

    def close(self) -> None:
        for s in self.socks:
            self.loop.remove_reader(s.fileno())
            s.close()

    def send(self, i: int, kind: str, wire: bytes) -> None:
        pending = self.pending[i]
        qid = self.next_id[i]
        while qid in pending:
            qid = (qid + 1) & 0xFFFF
        self.next_id[i] = (qid + 1) & 0xFFFF
        pending[qid] = (kind, time.time_ns())
        try:
            self.socks[i].send(qid.to_bytes(2, "big") + wire[2:])
        except BlockingIOError:
            del pending[qid]
            self.errors += 1

    def _readable(self, i: int) -> None:
        sock, pending = self.socks[i], self.pending[i]
        while True:
            try:
                data, ancillary, _, _ = sock.recvmsg(65535, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                return
            now = time.time_ns()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack(value[: _TIMESPEC.size])
                    now = sec * 1_000_000_000 + nsec
            sent = pending.pop(int.from_bytes(data[:2], "big"), None)
            if sent is None:
                continue  # the answer to a query already counted lost
            kind, t0 = sent
            if data[3] & 0x0F or not (data[6] or data[7]):  # an error, or no answer
                self.errors += 1
            if data[2] & 0x02:
                self.truncated += 1
            self.latencies[kind].append((now - t0) / 1e9)
            if self.on_answer is not None:
                self.on_answer(i)

    def expire(self, later: float = 0.0) -> list[tuple[int, str]]:
        """Queries without an answer for RESEND_AFTER (``later`` seconds from now): counted
        lost, returned to resend."""
        cutoff = time.time_ns() + int((later - RESEND_AFTER) * 1e9)
        lost = []
        for i, pending in enumerate(self.pending):
            for qid, (kind, t0) in list(pending.items()):
                if t0 < cutoff:
                    del pending[qid]
                    lost.append((i, kind))
        self.lost += len(lost)
        return lost

    @property
    def answered(self) -> int:
        return sum(len(v) for v in self.latencies.values())


async def saturate(port: int, kind: str, duration: float, server: psutil.Process) -> dict:
    rng = random.Random(1)
    pool = queries(kind, 4096, rng)
    gen = Generator((SERVER, port), SOCKETS)
    counter = [0]

    def next_query(i: int) -> None:
        k, wire = pool[counter[0] % len(pool)]
        counter[0] += 1
        gen.send(i, k, wire)

    # warm up, then count from a clean slate
    gen.on_answer = next_query
    for i in range(SOCKETS):
        for _ in range(IN_FLIGHT):
            next_query(i)
    await asyncio.sleep(1.0)
    gen.latencies.clear()
    gen.errors = gen.truncated = gen.lost = 0
    cpu0 = server.cpu_times()
    t0 = time.perf_counter()
    while time.perf_counter() < t0 + duration:
        for i, _ in gen.expire():
            next_query(i)
        await asyncio.sleep(0.1)
    elapsed = time.perf_counter() - t0
    answered = gen.answered
    cpu1 = server.cpu_times()
    gen.on_answer = None
    gen.close()
    return {
        "kind": kind,
        "qps": round(answered / elapsed),
        "answered": answered,
        "lost": gen.lost,
        "errors": gen.errors,
        "server_cpu_us_per_query": _cpu_per_query(cpu0, cpu1, answered),
        **_latency(gen.latencies),
    }


async def constant_rate(
    target: tuple[str, int], kind: str, rate: float, duration: float, server: psutil.Process
) -> dict:
    rng = random.Random(2)
    n = int(rate * duration)
    plan = queries(kind, n, rng)
    gen = Generator(target, 4)
    cpu0 = server.cpu_times()
    psutil.cpu_percent(percpu=True)  # starts the interval the next call reports on
    t0 = time.perf_counter()
    sent = 0
    late = []  # how far behind schedule each send went out
    while sent < n:
        now = time.perf_counter()
        due = min(n, int((now - t0) * rate) + 1)
        while sent < due:
            kind, wire = plan[sent]
            late.append(now - (t0 + sent / rate))
            gen.send(sent % len(gen.socks), kind, wire)
            sent += 1
        gen.expire()
        await asyncio.sleep(max(0.0, t0 + sent / rate - time.perf_counter()))
    # let the last answers in; what has none by then is lost
    await asyncio.sleep(RESEND_AFTER)
    gen.expire(later=RESEND_AFTER)
    cpu1 = server.cpu_times()
    # Each core's busy share meanwhile: all the machine's work, ours and anyone else's,
    # the resolver's share of it being its CPU per query times the rate.
    cores_busy = [round(x / 100, 2) for x in psutil.cpu_percent(percpu=True)]
    gen.close()
    per_kind = {k: _latency({k: v}) for k, v in sorted(gen.latencies.items())}
    return {
        "rate": rate,
        "duration_s": duration,
        "sent": n,
        "answered": gen.answered,
        "lost": gen.lost,
        "errors": gen.errors,
        "truncated": gen.truncated,
        "send_lateness_p99_ms": round(_pct(sorted(late), 0.99) * 1e3, 3),
        "cores_busy": cores_busy,
        "server_cpu_us_per_query": _cpu_per_query(cpu0, cpu1, gen.answered),
        **_latency(gen.latencies),
        "by_kind": per_kind,
    }


def _pct(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def _latency(by_kind: dict[str, list[float]]) -> dict:
    xs = sorted(x for v in by_kind.values() for x in v)
    if not xs:
        return {}
    return {
        "p50_ms": round(_pct(xs, 0.50) * 1e3, 3),
        "p90_ms": round(_pct(xs, 0.90) * 1e3, 3),
        "p99_ms": round(_pct(xs, 0.99) * 1e3, 3),
        "p999_ms": round(_pct(xs, 0.999) * 1e3, 3),
        "max_ms": round(xs[-1] * 1e3, 3),
        "mean_ms": round(statistics.fmean(xs) * 1e3, 3),
    }


def _cpu_per_query(a, b, answered: int) -> float | None:
    if not answered:
        return None
    used = (b.user - a.user) + (b.system - a.system)
    return round(used / answered * 1e6, 1)


def _say(what: str, r: dict) -> None:
    rate = f"{r['qps']:7} q/s" if "qps" in r else f"{r['rate']:5.0f} q/s"
    print(
        f"  {what:34} {rate}  p50 {r['p50_ms']:6.3f}  p99 {r['p99_ms']:6.3f}  "
        f"p99.9 {r['p999_ms']:6.3f} ms  lost {r['lost']}  "
        f"resolver CPU {r['server_cpu_us_per_query']} us/query",
        flush=True,
    )


class Resolver:
    """The resolver's process, with or without its answer cache."""

    def __init__(self, upstream: str, cache: bool, cpu: int | None) -> None:
        args = [upstream] if cache else [upstream, "--no-cache"]
        self.proc, hello = start_role("serve", *args, cpu=cpu)
        self.port = hello["port"]
        self.process = psutil.Process(hello["pid"])

    def stop(self) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]
        self.proc.wait(timeout=30)


async def one_round(args: argparse.Namespace, upstream: str, pin: bool) -> dict:
    host, port = upstream.rsplit(":", 1)
    out: dict[str, dict] = {}
    for cache in (True, False):
        label = "cached" if cache else "no cache"
        res = Resolver(upstream, cache, SERVER_CPU if pin else None)
        try:
            kinds = ("mix", "service", "tasks", "forwarded") if cache else ("mix",)
            for kind in kinds:
                r = await saturate(res.port, kind, args.saturation, res.process)
                out[f"saturation {kind}, {label}"] = r
                _say(f"saturation {kind}, {label}", r)
            r = await constant_rate(
                (SERVER, res.port), "mix", args.rate, args.duration, res.process
            )
            out[f"constant mix, {label}"] = r
            _say(f"constant mix, {label}", r)
            for kind, lat in r["by_kind"].items():
                print(f"    {kind:10} p50 {lat['p50_ms']:6.3f}  p99 {lat['p99_ms']:6.3f} ms")
        finally:
            res.stop()
    # The upstream alone, asked straight at the rate the mix forwards to it: what the
    # forwarded queries' figures would be without the resolver in the way.
    share = dict(MIX)["forwarded"]
    r = await constant_rate(
        (host, int(port)), "forwarded", args.rate * share, args.duration, psutil.Process()
    )
    r["server_cpu_us_per_query"] = None
    out["constant forwarded names, straight to the upstream"] = r
    _say("upstream alone (baseline)", r)
    return out


async def run(args: argparse.Namespace) -> dict:
    load_before = [round(x, 2) for x in os.getloadavg()]
    pin = (os.cpu_count() or 1) >= 2 and args.pin
    if pin:
        os.sched_setaffinity(0, {OTHERS_CPU})
    upstream, up = start_role("upstream", cpu=OTHERS_CPU if pin else None)
    rounds = []
    try:
        for i in range(args.rounds):
            print(f"round {i + 1} (load average {os.getloadavg()[0]:.2f})", flush=True)
            rounds.append(await one_round(args, up["address"], pin))
    finally:
        upstream.stdin.close()  # type: ignore[union-attr]
        upstream.wait(timeout=30)
    median = {
        what: {
            k: statistics.median(r[what][k] for r in rounds)
            for k in ("qps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "server_cpu_us_per_query")
            if all(r[what].get(k) is not None for r in rounds)
        }
        for what in rounds[0]
    }
    steady = median["constant mix, cached"]
    met = steady["p99_ms"] < TARGET_P99_MS and not any(
        r["constant mix, cached"]["lost"] for r in rounds
    )
    print(f"\nmedians over {args.rounds} rounds:")
    for what, m in median.items():
        print(f"  {what:52} " + "  ".join(f"{k} {v:g}" for k, v in m.items()))
    print(
        f"target p99 < {TARGET_P99_MS} ms at {args.rate:.0f} q/s (median of rounds, cached): "
        f"{steady['p99_ms']:.3f} ms, {'met' if met else 'MISSED'}"
    )
    return {
        "benchmark": "overlay resolver (shoal.network.dns.DnsServer) on loopback, UDP; see "
        "bench/dns.py for the table, the query mix and the load",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "settings": {
            "services": SERVICES,
            "tasks_per_service": TASKS,
            "networks": 2,
            "mix": dict(MIX),
            "saturation_s": args.saturation,
            "saturation_in_flight": SOCKETS * IN_FLIGHT,
            "rate": args.rate,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "resolver_on_own_core": pin,
            "load_average_before": load_before,
            "event_loop": "asyncio",
        },
        "median": median,
        "rounds": rounds,
        "target": {"p99_ms": TARGET_P99_MS, "rate": args.rate, "met": met},
    }


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        cache = "--no-cache" not in sys.argv
        if profile := os.environ.get("DNS_BENCH_PROFILE"):  # where the resolver's profile goes
            import cProfile

            cProfile.run(f"asyncio.run(serve_resolver({sys.argv[2]!r}, {cache}))", profile)
        else:
            asyncio.run(serve_resolver(sys.argv[2], cache))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "upstream":
        asyncio.run(serve_upstream())
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0, help="seconds at the constant rate")
    p.add_argument("--rate", type=float, default=1000.0, help="queries per second")
    p.add_argument("--saturation", type=float, default=5.0, help="seconds per saturation run")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="resolver on core 1, the rest on core 0",
    )
    p.add_argument("--output", type=Path, default=RESULTS)
    args = p.parse_args()
    result = asyncio.run(run(args))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0 if result["target"]["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
