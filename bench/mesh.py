"""Routing-mesh benchmark: HTTP requests through the mesh against the same requests sent
straight to the task.

    sudo .venv/bin/python bench/mesh.py [--duration 5] [--rounds 3] [--connections 32]

Hosts are network namespaces on a bridge (tests/integration/network/netns.py): host 1 runs
the task (a small asyncio HTTP server, tests/integration/network/apps/backend.py), host 3 is
a mesh node that runs no task, host 4 is a client machine outside the cluster. The load
generator (``wrk`` if installed, else bench/loadgen.py) runs as its own process in the
client's namespace. Every scenario measures "direct" (client -> task) against each data
path (client -> node 3's published port -> task); external-client scenarios also measure
"routed" (client -> task through node 3 as a plain IP router: no NAT, no mesh), which
prices the extra network hop alone.

Scenarios, by where the work runs and how the client connects:

- shared cores: every host's processes and packet processing share all the machine's
  cores, as the scheduler likes. On a small machine the extra hop then competes for the
  same CPU as the load generator and the task, so a ratio here is mostly what the hop costs
  in CPU, not what a mesh node on a machine of its own would let through.
  - external: the client is host 4, one more network hop through the mesh than direct.
  - on-node: the client runs on node 3 itself, to its own published port: the same hops
    as direct (node 3 -> task), so the difference is the data path alone.
- own core (needs 2 cores): node 3, its processes and its packet processing (RPS on its
  interface), on core 1; the client, the task and theirs on core 0. This is as close as
  one machine gets to the mesh node being another machine: it shows whether the mesh node
  holds the requests back, given a core of its own (direct leaves core 1 idle). It is not
  a free hop: every packet handed between the cores costs core 0 too, so even plain
  routing ("routed") loses a third here; read the data paths against routed.
- keep-alive: 32 connections each sending request after request. new-connection: every
  request on a new TCP connection ("Connection: close"), which adds the connection's
  setup to each request: accept and connect for the userspace proxy, a conntrack entry
  and NAT for the kernel path.

Besides requests per second and latency, each measurement records how busy each core was
("cores busy", from /proc/stat: who is saturated), the machine's CPU time per request (all
cores' busy time over the requests served: on a quiet machine, what each path costs in
total, wherever it runs) and, for the userspace path, the CPU time the mesh node's process
spent per request (user + system, so including the kernel's work in its own send and recv
calls): the figure least disturbed by anything else running.

Scenarios and data paths are interleaved round by round and medians reported. Other
programs running on the machine meanwhile lower and scatter every figure. Writes
bench/results/mesh.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shoal.network.routing import Backend, PortRoute, RoutingTable  # noqa: E402
from tests.integration.network.netns import Testbed, why_no_netns, why_no_nft  # noqa: E402

BACKEND_APP = ROOT / "tests" / "integration" / "network" / "apps" / "backend.py"
LOADGEN = ROOT / "bench" / "loadgen.py"
RESULTS = ROOT / "bench" / "results" / "mesh.json"
TASK_HOST, NODE_HOST, CLIENT_HOST = 1, 3, 4
TASK_PORT, PUBLISHED = 9001, 8080
# Second addresses of the task's host and the client, routed through node 3 (no NAT): the
# "routed" baseline.
ROUTED_TASK, ROUTED_CLIENT = "198.19.0.1", "198.19.0.4"
TARGETS = {"nftables": 0.90, "userspace": 0.50}
# The "own core" scenarios: node 3 on one core, client and task on the other.
HOSTS_CPU, NODE_CPU = 0, 1


@dataclass(frozen=True)
class Scenario:
    name: str
    client: int
    own_core: bool
    new_connections: bool
    meaning: str


SCENARIOS = [
    Scenario("shared external keep-alive", CLIENT_HOST, False, False,
             "client machine -> node without tasks -> task, all on shared cores; "
             "32 keep-alive connections"),
    Scenario("shared on-node keep-alive", NODE_HOST, False, False,
             "client on the node without tasks, to its own published port (same hops as "
             "direct: the data path alone), shared cores; 32 keep-alive connections"),
    Scenario("shared external new-connection", CLIENT_HOST, False, True,
             "as shared external, a new TCP connection per request"),
    Scenario("own-core external keep-alive", CLIENT_HOST, True, False,
             "client machine -> node without tasks -> task; the node (its processes and "
             "packet processing) on a core of its own, client and task on the other; "
             "32 keep-alive connections"),
    Scenario("own-core external new-connection", CLIENT_HOST, True, True,
             "as own-core external, a new TCP connection per request"),
]  # fmt: skip


def _seconds(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip())
    if not m:
        raise ValueError(value)
    return float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(2)]


def parse_wrk(out: str, new_connections: bool = False) -> dict[str, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    errors = 0
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        connect, read, write, timeout = (int(x) for x in m.groups())
        # wrk counts the server's close after each "Connection: close" answer as a read
        # error; a response cut short would show as a missing or non-2xx answer instead.
        errors += connect + write + timeout + (0 if new_connections else read)
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    return {
        "rps": rps,
        "p50_ms": _seconds(lat["50"]) * 1e3,
        "p99_ms": _seconds(lat["99"]) * 1e3,
        "errors": errors,
        "requests": requests,
    }


def _cpu_ticks() -> list[tuple[int, int]]:
    """(busy, total) clock ticks of each core so far, from /proc/stat."""
    ticks = []
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                v = [int(x) for x in line.split()[1:]]
                idle = v[3] + v[4]  # idle + iowait
                ticks.append((sum(v) - idle, sum(v)))
    return ticks


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.bed = Testbed(hosts=4, tag="bench")
        self.python = sys.executable
        self.wrk = shutil.which("wrk")

    def load(
        self,
        scenario: Scenario,
        addr: str,
        port: int,
        cpus: set[int] | None = None,
        node: subprocess.Popen | None = None,
    ) -> dict[str, float]:
        """One measurement. Adds how busy each core was and, given the userspace mesh
        node's process, the CPU time it spent per request."""
        before = _cpu_ticks()
        node_cpu = psutil.Process(node.pid).cpu_times() if node is not None else None
        r = self._load(scenario, addr, port, cpus)
        if node is not None and node_cpu is not None and r["requests"]:
            after = psutil.Process(node.pid).cpu_times()
            spent = after.user + after.system - node_cpu.user - node_cpu.system
            r["node_cpu_us_per_request"] = spent / r["requests"] * 1e6
        r["cpu_busy"] = [
            (b1 - b0) / max(1, t1 - t0)
            for (b0, t0), (b1, t1) in zip(before, _cpu_ticks(), strict=True)
        ]
        return r

    def _load(
        self, scenario: Scenario, addr: str, port: int, cpus: set[int] | None
    ) -> dict[str, float]:
        a = self.args
        if self.wrk:
            argv = [self.wrk, "-t1", f"-c{a.connections}", f"-d{a.duration}s", "--latency"]
            if scenario.new_connections:
                argv += ["-H", "Connection: close"]
            argv.append(f"http://{addr}:{port}/")
        else:
            argv = [self.python, str(LOADGEN), addr, str(port), "--connections",
                    str(a.connections), "--duration", str(a.duration)]  # fmt: skip
            if scenario.new_connections:
                argv.append("--close")
        if cpus is not None:
            argv = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *argv]
        r = self.bed.run(scenario.client, argv, capture_output=True, text=True, check=True)
        return parse_wrk(r.stdout, scenario.new_connections) if self.wrk else json.loads(r.stdout)

    def place(self, scenario: Scenario, task: subprocess.Popen) -> set[int] | None:
        """Pin the hosts' processes and packet processing for ``scenario``; returns the
        cores of the client and the task (None: all of them)."""
        everything = set(range(os.cpu_count() or 1))
        own = scenario.own_core
        for host in (TASK_HOST, NODE_HOST, CLIENT_HOST):
            # RPS: which cores process the packets this host's interface receives.
            mask = 0 if not own else (1 << NODE_CPU if host == NODE_HOST else 1 << HOSTS_CPU)
            self.sh(host, f"echo {mask:x} > /sys/class/net/eth0/queues/rx-0/rps_cpus")
        os.sched_setaffinity(task.pid, {HOSTS_CPU} if own else everything)
        return {HOSTS_CPU} if own else None

    def mesh_node(self, data_path: str, cpus: set[int] | None) -> subprocess.Popen:
        argv = [self.python, "-m", "shoal.network.meshnode", "--data-path", data_path,
                "--address", self.bed.addr(NODE_HOST)]  # fmt: skip
        if self.args.uvloop and data_path == "userspace":
            argv.append("--uvloop")
        node = self.bed.popen(
            NODE_HOST, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        if cpus is not None:
            os.sched_setaffinity(node.pid, cpus)
        hello = json.loads(node.stdout.readline())  # type: ignore[union-attr]
        if hello.get("data_path") != data_path:
            raise RuntimeError(f"asked for {data_path}, got {hello}")
        table = RoutingTable.of(
            [PortRoute("tcp", PUBLISHED, "bench", (Backend(self.bed.addr(TASK_HOST), TASK_PORT),))]
        )
        node.stdin.write(json.dumps(table.to_json()) + "\n")  # type: ignore[union-attr]
        node.stdin.flush()  # type: ignore[union-attr]
        reply = json.loads(node.stdout.readline())  # type: ignore[union-attr]
        if reply.get("errors"):
            raise RuntimeError(f"mesh node: {reply}")
        return node

    def route_through_node(self) -> None:
        node = self.bed.addr(NODE_HOST)
        for host, own, peer in (
            (TASK_HOST, ROUTED_TASK, ROUTED_CLIENT),
            (CLIENT_HOST, ROUTED_CLIENT, ROUTED_TASK),
        ):
            self.sh(host, f"ip addr add {own}/32 dev eth0")
            self.sh(host, f"ip route add {peer}/32 via {node} src {own}")
            self.sh(NODE_HOST, f"ip route add {own}/32 via {self.bed.addr(host)}")
        for key in ("ip_forward", "conf.all.send_redirects", "conf.eth0.send_redirects"):
            value = "1" if key == "ip_forward" else "0"
            self.sh(NODE_HOST, f"sysctl -qw net.ipv4.{key}={value}")

    def sh(self, host: int, command: str) -> None:
        self.bed.run(host, ["sh", "-c", command], check=True)

    def run(self) -> dict:
        a = self.args
        bed = self.bed
        self.route_through_node()
        task = bed.popen(
            TASK_HOST,
            [self.python, str(BACKEND_APP), "--name", "task1", "--host", "0.0.0.0",
             "--port", str(TASK_PORT), "--mode", "http"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert task.stdout.readline().strip() == "ready"  # type: ignore[union-attr]
        data_paths = [p for p in ("nftables", "userspace") if p in a.paths]
        scenarios = [s for s in SCENARIOS if s.name in a.scenarios]
        if (os.cpu_count() or 1) < 2:
            scenarios = [s for s in scenarios if not s.own_core]
        runs: dict[str, dict[str, list[dict[str, float]]]] = {}
        for sc in scenarios:
            runs[sc.name] = {k: [] for k in ["direct", *data_paths]}
            if sc.client == CLIENT_HOST:
                runs[sc.name]["routed"] = []
        # Warm up (ARP, caches, the task's first connections).
        self.load(SCENARIOS[0], bed.addr(TASK_HOST), TASK_PORT)
        for rnd in range(a.rounds):
            for sc in scenarios:
                cpus = self.place(sc, task)
                r = self.load(sc, bed.addr(TASK_HOST), TASK_PORT, cpus)
                runs[sc.name]["direct"].append(r)
                _say(rnd, sc.name, "direct", r)
                if "routed" in runs[sc.name]:
                    r = self.load(sc, ROUTED_TASK, TASK_PORT, cpus)
                    runs[sc.name]["routed"].append(r)
                    _say(rnd, sc.name, "routed", r)
                for dp in data_paths:
                    node = self.mesh_node(dp, {NODE_CPU} if sc.own_core else None)
                    try:
                        r = self.load(
                            sc, bed.addr(NODE_HOST), PUBLISHED, cpus,
                            node if dp == "userspace" else None,
                        )  # fmt: skip
                        runs[sc.name][dp].append(r)
                        _say(rnd, sc.name, dp, r)
                    finally:
                        node.stdin.close()  # type: ignore[union-attr]
                        node.wait(timeout=30)
        return self.summarise(runs, data_paths, scenarios)

    def summarise(self, runs: dict, data_paths: list[str], scenarios: list[Scenario]) -> dict:
        summary: dict[str, dict] = {}
        for name, by_path in runs.items():
            med = {
                k: {m: statistics.median(r[m] for r in rs) for m in ("rps", "p50_ms", "p99_ms")}
                for k, rs in by_path.items()
            }
            for k, rs in by_path.items():
                med[k]["errors"] = sum(r["errors"] for r in rs)
                med[k]["cpu_busy"] = [
                    round(statistics.median(core), 2)
                    for core in zip(*(r["cpu_busy"] for r in rs), strict=True)
                ]
                med[k]["cpu_us_per_request"] = statistics.median(
                    sum(r["cpu_busy"]) / r["rps"] * 1e6 for r in rs if r["rps"]
                )
                if all("node_cpu_us_per_request" in r for r in rs):
                    med[k]["node_cpu_us_per_request"] = statistics.median(
                        r["node_cpu_us_per_request"] for r in rs
                    )
            for dp in data_paths:
                med[dp]["ratio"] = med[dp]["rps"] / med["direct"]["rps"]
                med[dp]["target"] = TARGETS[dp]
                if "routed" in med:
                    med[dp]["ratio_to_routed"] = med[dp]["rps"] / med["routed"]["rps"]
            if "routed" in med:
                med["routed"]["ratio"] = med["routed"]["rps"] / med["direct"]["rps"]
            summary[name] = med
        return {
            "benchmark": "routing mesh: HTTP requests to one task, through a node without "
            "tasks (or from the node itself) vs direct; see bench/mesh.py for each scenario",
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {
                "kernel": platform.release(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
            },
            "load_generator": (
                subprocess.run(
                    [self.wrk, "--version"], capture_output=True, text=True
                ).stdout.splitlines()[0]
                if self.wrk
                else "bench/loadgen.py"
            ),
            "settings": {
                "duration_s": self.args.duration,
                "rounds": self.args.rounds,
                "connections": self.args.connections,
                "userspace_event_loop": "uvloop" if self.args.uvloop else "asyncio",
            },
            "scenarios": {sc.name: sc.meaning for sc in scenarios},
            "median": summary,
            "runs": runs,
        }


def _say(rnd: int, scenario: str, what: str, r: dict[str, float]) -> None:
    print(
        f"  round {rnd + 1} {scenario:32} {what:9} {r['rps']:9.0f} req/s  "
        f"p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms",
        flush=True,
    )


def _has_uvloop() -> bool:
    try:
        import uvloop  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--paths", nargs="+", default=["nftables", "userspace"])
    p.add_argument(
        "--scenarios", nargs="+", default=[sc.name for sc in SCENARIOS], metavar="SCENARIO"
    )
    p.add_argument(
        "--uvloop",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="userspace proxy on uvloop (default: if installed)",
    )
    p.add_argument("--output", type=Path, default=RESULTS)
    args = p.parse_args()
    if args.uvloop is None:
        args.uvloop = _has_uvloop()
    if why := why_no_netns():
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    if "nftables" in args.paths and (why := why_no_nft()):
        print(f"cannot run the kernel path: {why}", file=sys.stderr)
        return 2
    bench = Bench(args)
    with bench.bed:
        result = bench.run()
    print()
    print(
        f"{'scenario':32} {'path':10} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'cores busy':>10}"
        f" {'CPU us/req':>10} vs direct"
    )
    for scenario, med in result["median"].items():
        for what, m in med.items():
            ratio = f"{m['ratio']:.0%}" if "ratio" in m else ""
            if "target" in m:
                ratio += f" (target {m['target']:.0%})"
            if "ratio_to_routed" in m:
                ratio += f", {m['ratio_to_routed']:.0%} of routed"
            if "node_cpu_us_per_request" in m:
                ratio += f"; proxy {m['node_cpu_us_per_request']:.0f} us CPU/request"
            busy = "/".join(f"{x:.2f}" for x in m["cpu_busy"])
            print(
                f"{scenario:32} {what:10} {m['rps']:9.0f} {m['p50_ms']:7.2f} {m['p99_ms']:7.2f}"
                f" {busy:>10} {m['cpu_us_per_request']:10.1f} {ratio}"
            )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"\nwrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
