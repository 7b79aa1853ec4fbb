"""Routing-mesh benchmark: HTTP requests through the mesh against the same requests sent
straight to the task.

    sudo .venv/bin/python bench/mesh.py [--duration 5] [--rounds 3] [--connections 32]

Hosts are network namespaces on a bridge (tests/integration/network/netns.py): host 1 runs
the task (a small asyncio HTTP server answering every keep-alive request), host 3 is a
mesh node that runs no task, hosts 3 and 4 take turns as the client. The load generator
(``wrk`` if installed, else bench/loadgen.py) runs as its own process in the client's
namespace. Two placements of the client:

- external: the client is another machine (host 4). Direct = host 4 -> task; through the
  mesh = host 4 -> node 3 -> task, one more network hop than direct.
  Also "routed": host 4 -> task through node 3 as a plain IP router (no NAT, no mesh),
  which prices the extra hop alone.
- on-node: the client runs on node 3 itself. Direct = node 3 -> task; through the mesh =
  node 3 -> its own published port -> task: the same hops, so the difference is the data
  path alone.

Every process here shares this machine's cores, including the kernel's packet processing
in each namespace, so the mesh's own cost shows up as lost requests per second. Scenarios
are interleaved round by round and medians reported. Writes bench/results/mesh.json.
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
from pathlib import Path

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


def _seconds(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip())
    if not m:
        raise ValueError(value)
    return float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(2)]


def parse_wrk(out: str) -> dict[str, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    errors = 0
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(x) for x in m.groups())
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    return {
        "rps": rps,
        "p50_ms": _seconds(lat["50"]) * 1e3,
        "p99_ms": _seconds(lat["99"]) * 1e3,
        "errors": errors,
    }


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.bed = Testbed(hosts=4, tag="bench")
        self.python = sys.executable
        self.wrk = shutil.which("wrk")

    def load(self, client: int, addr: str, port: int) -> dict[str, float]:
        a = self.args
        if self.wrk:
            argv = [self.wrk, "-t1", f"-c{a.connections}", f"-d{a.duration}s", "--latency",
                    f"http://{addr}:{port}/"]  # fmt: skip
            r = self.bed.run(client, argv, capture_output=True, text=True, check=True)
            return parse_wrk(r.stdout)
        argv = [self.python, str(LOADGEN), addr, str(port), "--connections",
                str(a.connections), "--duration", str(a.duration)]  # fmt: skip
        r = self.bed.run(client, argv, capture_output=True, text=True, check=True)
        return json.loads(r.stdout)

    def mesh_node(self, data_path: str) -> subprocess.Popen:
        argv = [self.python, "-m", "shoal.network.meshnode", "--data-path", data_path,
                "--address", self.bed.addr(NODE_HOST)]  # fmt: skip
        if self.args.uvloop and data_path == "userspace":
            argv.append("--uvloop")
        node = self.bed.popen(
            NODE_HOST, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
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
        placements = {"external": CLIENT_HOST, "on-node": NODE_HOST}
        runs: dict[str, dict[str, list[dict[str, float]]]] = {
            pl: {k: [] for k in ["direct", *data_paths]} for pl in placements
        }
        runs["external"]["routed"] = []
        # Warm up (ARP, caches, the task's first connections).
        self.load(CLIENT_HOST, bed.addr(TASK_HOST), TASK_PORT)
        for rnd in range(a.rounds):
            for placement, client in placements.items():
                r = self.load(client, bed.addr(TASK_HOST), TASK_PORT)
                runs[placement]["direct"].append(r)
                _say(rnd, placement, "direct", r)
            r = self.load(CLIENT_HOST, ROUTED_TASK, TASK_PORT)
            runs["external"]["routed"].append(r)
            _say(rnd, "external", "routed", r)
            for dp in data_paths:
                node = self.mesh_node(dp)
                try:
                    for placement, client in placements.items():
                        r = self.load(client, bed.addr(NODE_HOST), PUBLISHED)
                        runs[placement][dp].append(r)
                        _say(rnd, placement, dp, r)
                finally:
                    node.stdin.close()  # type: ignore[union-attr]
                    node.wait(timeout=30)
        return self.summarise(runs, data_paths)

    def summarise(self, runs: dict, data_paths: list[str]) -> dict:
        summary: dict[str, dict] = {}
        for placement, by_path in runs.items():
            med = {
                k: {m: statistics.median(r[m] for r in rs) for m in ("rps", "p50_ms", "p99_ms")}
                for k, rs in by_path.items()
            }
            for k, rs in by_path.items():
                med[k]["errors"] = sum(r["errors"] for r in rs)
            for dp in data_paths:
                med[dp]["ratio"] = med[dp]["rps"] / med["direct"]["rps"]
                med[dp]["target"] = TARGETS[dp]
                if "routed" in med:
                    med[dp]["ratio_to_routed"] = med[dp]["rps"] / med["routed"]["rps"]
            if "routed" in med:
                med["routed"]["ratio"] = med["routed"]["rps"] / med["direct"]["rps"]
            summary[placement] = med
        return {
            "benchmark": "routing mesh: HTTP keep-alive requests, one task, through a node "
            "without tasks vs direct",
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
            "median": summary,
            "runs": runs,
        }


def _say(rnd: int, placement: str, what: str, r: dict[str, float]) -> None:
    print(
        f"  round {rnd + 1} {placement:8} {what:9} {r['rps']:9.0f} req/s  "
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
    print(f"{'client':9} {'path':10} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'vs direct':>9}")
    for placement, med in result["median"].items():
        for what, m in med.items():
            ratio = f"{m['ratio']:.0%}" if "ratio" in m else ""
            if "target" in m:
                ratio += f" (target {m['target']:.0%})"
            if "ratio_to_routed" in m:
                ratio += f", {m['ratio_to_routed']:.0%} of routed"
            print(
                f"{placement:9} {what:10} {m['rps']:9.0f} {m['p50_ms']:7.2f} {m['p99_ms']:7.2f}"
                f" {ratio}"
            )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"\nwrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
