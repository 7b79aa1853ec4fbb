"""Scale: real manager daemons and a fleet of simulated nodes (shoal.daemon.fleet).

Managers are `shoal daemon` processes on loopback addresses (127.0.46.x), drained so that
tasks go to the simulated workers only; the workers run in a few fleet processes (many nodes
each), every one a real agent with its own certificate and mutual-TLS session whose tasks
are simulated (the sim runtime). Phases, in order:

1. create: --services services of --replicas replicas each; the time from the first create
   to every task running, and tasks per second end to end;
2. update: a rolling update (--update-parallelism at a time) of the first service, to done;
3. leader kill (3 managers or more): SIGKILL the leader; the time until a surviving manager
   accepts a write, and how many running tasks were replaced meanwhile (should be 0);
4. node loss: a tenth of the nodes killed at once (connections closed, no leave): the time
   until the managers mark them all down and until every task runs elsewhere.

Throughout, a sampler records the running tasks (ServiceStatus), the managers' RSS and CPU
(from /proc), and the latency of control API calls made meanwhile through a manager's
socket: `service ls` (GET /services?status=true), `node ls` (GET /nodes) and a one-service
update. Prints the figures; writes bench/results/fleet.json and, when matplotlib is
installed (the `bench` extra), bench/results/fleet.png.

Run: .venv/bin/python bench/fleet.py [--managers 3 --nodes 1000 --services 100
     --replicas 1000]; smaller: --managers 1 --nodes 50 --services 4 --replicas 500
"""

import argparse
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import checkout_path  # noqa: F401  (first: this checkout's tests/ and src/)

from tests.e2e.fleet import FleetProcess
from tests.e2e.harness import Node, wait_for

RESULTS = Path(__file__).parent / "results"
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
MANAGER_ARGS = ["--runtime", "process", "--engine-host", "none", "--no-overlay"]


def proc_usage(pid: int) -> tuple[float, int]:
    """CPU seconds used so far and resident bytes of process ``pid``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/statm") as f:
            rss = int(f.read().split()[1]) * PAGE
    except OSError:
        return 0.0, 0
    return (int(fields[11]) + int(fields[12])) / TICK, rss


LEADER_LINE = "this manager is now the raft leader"
LAG_LINE = re.compile(r"event loop lag over the last \d+ s: max (\d+) ms, p99 (\d+) ms")


def loop_lag(log_text: str) -> dict[str, Any]:
    """A manager's event-loop lag from the windows it logged (only those whose worst lag
    reached 100 ms are logged): the worst lag, the worst window's p99, and how many windows
    held the loop for a second or more (an election timeout is 1 to 2 s)."""
    windows = [(int(a), int(b)) for a, b in LAG_LINE.findall(log_text)]
    return {
        "windows_logged": len(windows),
        "max_ms": max((w[0] for w in windows), default=0),
        "worst_p99_ms": max((w[1] for w in windows), default=0),
        "windows_max_over_1s": sum(1 for w in windows if w[0] >= 1000),
    }


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


class Bench:
    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.args = args
        self.root = root
        self.managers = [
            Node(f"m{i}", f"127.0.46.{i}", root / f"m{i}", extra_args=list(MANAGER_ARGS))
            for i in range(1, args.managers + 1)
        ]
        self.fleets: list[FleetProcess] = []
        self.t0 = time.monotonic()
        self.phase = "setup"
        self.timeline: list[dict[str, Any]] = []
        self.api: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.total = args.services * args.replicas
        self._cpu: dict[str, tuple[float, float, int]] = {}
        self.probe_version = 0
        self.probe_id = ""

    # --- helpers ------------------------------------------------------------------------

    def live(self) -> list[Node]:
        return [m for m in self.managers if m.proc is not None and m.proc.poll() is None]

    def via(self) -> Node:
        return self.live()[-1]

    def running(self) -> int:
        services = self.via().get("/services?status=true")
        return sum(
            (s.get("ServiceStatus") or {}).get("RunningTasks", 0)
            for s in services
            if s["Spec"]["Name"].startswith("s")
        )

    def running_tasks(self) -> dict[str, str]:
        """Running tasks meant to run: task ID -> node ID."""
        filters = quote(json.dumps({"desired-state": ["running"]}))
        tasks = self.via().get(f"/tasks?filters={filters}")
        return {
            t["ID"]: t.get("NodeID", "")
            for t in tasks
            if t["Status"]["State"] == "running" and t["ServiceID"] != self.probe_id
        }

    def leader(self) -> Node:
        for n in self.via().get("/nodes"):
            ms = n.get("ManagerStatus") or {}
            if ms.get("Leader"):
                name = n["Description"]["Hostname"]
                return next(m for m in self.managers if m.name == name)
        raise RuntimeError("no leader")

    def elections(self) -> int:
        """How many times a manager became raft leader so far (each manager logs it)."""
        return sum(
            m.log_file.read_text(errors="replace").count(LEADER_LINE)
            for m in self.managers
            if m.log_file.exists()
        )

    def mark(self, phase: str) -> None:
        self.phase = phase
        print(f"[{time.monotonic() - self.t0:7.1f} s] {phase}", flush=True)

    # --- background: timeline and API probes ------------------------------------------

    def sample(self) -> None:
        while not self.stop.wait(self.args.sample_interval):
            row: dict[str, Any] = {"t": round(time.monotonic() - self.t0, 2), "phase": self.phase}
            try:
                row["running"] = self.running()
            except Exception as err:
                row["error"] = str(err)[:200]
            now = time.monotonic()
            for m in self.managers:
                if m.proc is None or m.proc.poll() is not None:
                    continue
                pid = m.proc.pid
                cpu, rss = proc_usage(pid)
                last = self._cpu.get(m.name)
                # A restarted manager is a new process: its CPU count starts again.
                if last is not None and last[2] == pid and now > last[1]:
                    row[f"{m.name}_cpu"] = round((cpu - last[0]) / (now - last[1]) * 100, 1)
                self._cpu[m.name] = (cpu, now, pid)
                row[f"{m.name}_rss_mb"] = round(rss / 2**20, 1)
            self.timeline.append(row)

    def timed(self, what: str, method: str, path: str, body: Any = None) -> Any:
        t = time.monotonic()
        try:
            resp = self.via().api(method, path, body)
            ok = resp.status < 400
        except OSError:
            resp, ok = None, False
        self.api.append(
            {
                "call": what,
                "phase": self.phase,
                "t": round(t - self.t0, 2),
                "ms": round((time.monotonic() - t) * 1000, 2),
                "ok": ok,
            }
        )
        return resp.body if resp is not None and ok else None

    def probe(self) -> None:
        while not self.stop.wait(self.args.probe_interval):
            self.timed("service ls", "GET", "/services?status=true")
            self.timed("node ls", "GET", "/nodes")
            svc = self.timed("service inspect", "GET", f"/services/{self.probe_id}")
            if svc is not None:
                spec = svc["Spec"]
                spec.setdefault("Labels", {})["probe"] = str(time.monotonic())
                version = svc["Version"]["Index"]
                self.timed(
                    "service update",
                    "POST",
                    f"/services/{self.probe_id}/update?version={version}",
                    spec,
                )

    # --- phases -------------------------------------------------------------------------

    def setup(self) -> None:
        a = self.args
        self.mark("managers")
        for m in self.managers:
            m.start()
        first = self.managers[0]
        first.cli("swarm", "init", "--advertise-addr", first.host, "--availability", "drain")
        token = first.cli("swarm", "join-token", "-q", "manager").stdout.strip()
        for m in self.managers[1:]:
            m.cli("swarm", "join", "--token", token, "--availability", "drain", first.addr)
        wait_for(lambda: len(self.via().get("/nodes")) == a.managers, what="managers")
        worker_token = first.cli("swarm", "join-token", "-q", "worker").stdout.strip()
        self.mark(f"fleet: {a.nodes} nodes in {math.ceil(a.nodes / a.per_process)} processes")
        t = time.monotonic()
        addrs = [m.addr for m in self.managers]
        sizes = [a.per_process] * (a.nodes // a.per_process)
        if a.nodes % a.per_process:
            sizes.append(a.nodes % a.per_process)
        for i in range(len(sizes)):
            extra = ("--start-latency", a.start_latency, "--seed", str(i))
            self.fleets.append(
                FleetProcess(addrs, worker_token, f"sim{i}", self.root / f"fleet{i}.log", extra)
            )
        # Grown in parallel: each process joins its nodes a few at a time.
        for f, size in zip(self.fleets, sizes, strict=True):
            assert f.proc.stdin is not None
            f.proc.stdin.write(json.dumps({"op": "grow", "count": size}) + "\n")
            f.proc.stdin.flush()
        for f in self.fleets:
            f._read()
        wait_for(
            lambda: (
                sum(1 for n in self.via().get("/nodes") if n["Status"]["State"] == "ready")
                == a.nodes + a.managers
            ),
            timeout=600,
            what="every node ready",
        )
        self.join_seconds = time.monotonic() - t
        probe = {
            "Name": "probe",
            "Mode": {"Replicated": {"Replicas": 0}},
            "TaskTemplate": {"ContainerSpec": {"Image": "probe"}},
        }
        created = first.api("POST", "/services/create", probe)
        self.probe_id = created.body["ID"]

    def profile(self, phase: str) -> list[subprocess.Popen]:
        """With --py-spy, sample the leader and the first fleet process during ``phase``
        (collapsed stacks in --profile-dir, for flame graphs or a top list)."""
        a = self.args
        if not a.py_spy:
            return []
        out = Path(a.profile_dir)
        out.mkdir(parents=True, exist_ok=True)
        targets = {"leader": self.leader().proc, "fleet0": self.fleets[0].proc}
        spies = []
        for name, proc in targets.items():
            assert proc is not None
            cmd = [
                a.py_spy,
                "record",
                "--pid",
                str(proc.pid),
                "--format",
                "raw",
                "--rate",
                "50",
                "--nonblocking",
            ]
            cmd += ["-o", str(out / f"{phase}-{name}.txt")]
            spies.append(
                subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        return spies

    @staticmethod
    def stop_profile(spies: list[subprocess.Popen]) -> None:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            spy.wait(timeout=60)

    def create(self) -> dict[str, Any]:
        a = self.args
        self.mark(f"create: {a.services} services x {a.replicas} replicas")
        spies = self.profile("create")
        t = time.monotonic()
        for i in range(a.services):
            body = {
                "Name": f"s{i}",
                "Mode": {"Replicated": {"Replicas": a.replicas}},
                "TaskTemplate": {"ContainerSpec": {"Image": "app"}},
                "UpdateConfig": {"Parallelism": a.update_parallelism, "Delay": 0},
            }
            resp = self.via().api("POST", "/services/create", body)
            if resp.status != 201:
                raise RuntimeError(f"create s{i}: {resp.status} {resp.body}")
        created = time.monotonic() - t
        wait_for(lambda: self.running() >= self.total, timeout=a.timeout, interval=0.5)
        seconds = time.monotonic() - t
        self.stop_profile(spies)
        return {
            "tasks": self.total,
            "create_calls_seconds": round(created, 2),
            "all_running_seconds": round(seconds, 2),
            "tasks_per_second": round(self.total / seconds, 1),
        }

    def update(self) -> dict[str, Any]:
        a = self.args
        self.mark(f"rolling update of s0 ({a.replicas} replicas, {a.update_parallelism} at a time)")
        svc = self.via().get("/services/s0")
        spec = svc["Spec"]
        spec["TaskTemplate"]["ForceUpdate"] = spec["TaskTemplate"].get("ForceUpdate", 0) + 1
        t = time.monotonic()
        resp = self.via().api(
            "POST", f"/services/{svc['ID']}/update?version={svc['Version']['Index']}", spec
        )
        if resp.status != 200:
            raise RuntimeError(f"update: {resp.status} {resp.body}")

        def done() -> bool:
            s = self.via().get(f"/services/{svc['ID']}")
            return (s.get("UpdateStatus") or {}).get("State") == "completed"

        wait_for(done, timeout=a.timeout, interval=0.5)
        seconds = time.monotonic() - t
        wait_for(lambda: self.running() >= self.total, timeout=a.timeout, interval=0.5)
        return {
            "replicas": a.replicas,
            "parallelism": a.update_parallelism,
            "seconds": round(seconds, 2),
            "tasks_per_second": round(a.replicas / seconds, 1),
        }

    def leader_kill(self) -> dict[str, Any]:
        self.mark("leader SIGKILL")
        before = self.running_tasks()
        leader = self.leader()
        survivors = [m for m in self.managers if m is not leader]
        t = time.monotonic()
        leader.kill()
        attempt = 0
        while True:
            attempt += 1
            body = {
                "Name": f"after-kill-{attempt}",
                "Mode": {"Replicated": {"Replicas": 0}},
                "TaskTemplate": {"ContainerSpec": {"Image": "x"}},
            }
            try:
                if (
                    survivors[attempt % len(survivors)].api("POST", "/services/create", body).status
                    == 201
                ):
                    break
            except OSError:
                pass
            if time.monotonic() - t > self.args.timeout:
                raise RuntimeError("no write accepted after the leader kill")
        write_seconds = time.monotonic() - t
        # Every node back in session with the new leader, then compare the running tasks.
        wait_for(
            lambda: (
                sum(1 for n in self.via().get("/nodes") if n["Status"]["State"] == "ready")
                >= self.args.nodes
            ),
            timeout=self.args.timeout,
            what="the fleet back with the new leader",
        )
        wait_for(lambda: self.running() >= self.total, timeout=self.args.timeout, interval=0.5)
        settled = time.monotonic() - t
        after = self.running_tasks()
        restarted = len(set(before) - set(after))
        self.mark("restarting the killed manager")
        leader.start()
        return {
            "killed": leader.name,
            "write_accepted_seconds": round(write_seconds, 3),
            "fleet_settled_seconds": round(settled, 2),
            "tasks_restarted": restarted,
        }

    def node_loss(self) -> dict[str, Any]:
        share = max(1, self.args.nodes // 10)
        self.mark(f"node loss: {share} nodes killed at once")
        per = [share // len(self.fleets)] * len(self.fleets)
        for i in range(share % len(self.fleets)):
            per[i] += 1
        t = time.monotonic()
        killed: set[str] = set()
        for f, n in zip(self.fleets, per, strict=True):
            killed |= {x["id"] for x in f.kill(n)}

        def all_down() -> bool:
            states = {n["ID"]: n["Status"]["State"] for n in self.via().get("/nodes")}
            return all(states.get(k) == "down" for k in killed)

        wait_for(all_down, timeout=self.args.timeout, interval=0.25)
        down = time.monotonic() - t

        def replaced() -> bool:
            tasks = self.running_tasks()
            return len(tasks) >= self.total and not killed & set(tasks.values())

        wait_for(replaced, timeout=self.args.timeout, interval=0.5)
        return {
            "nodes_killed": len(killed),
            "all_down_seconds": round(down, 2),
            "tasks_running_elsewhere_seconds": round(time.monotonic() - t, 2),
        }

    def close(self) -> None:
        self.stop.set()
        for f in self.fleets:
            f.close()
        for m in self.managers:
            m.stop()


def draw(summary: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [r for r in summary["timeline"] if "running" in r]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    top.plot([r["t"] for r in rows], [r["running"] for r in rows], color="tab:blue")
    top.set_ylabel("running tasks")
    top.set_title(
        f"shoal: {summary['config']['managers']} managers, {summary['config']['nodes']} "
        f"simulated nodes, {summary['config']['tasks']} tasks"
    )
    for name in summary["config"]["manager_names"]:
        pts = [(r["t"], r[f"{name}_rss_mb"]) for r in summary["timeline"] if f"{name}_rss_mb" in r]
        if pts:
            bottom.plot(*zip(*pts, strict=True), label=f"{name} RSS (MiB)")
    bottom.set_xlabel("seconds")
    bottom.set_ylabel("MiB")
    bottom.legend(loc="upper left")
    cpu = bottom.twinx()
    for name in summary["config"]["manager_names"]:
        pts = [(r["t"], r[f"{name}_cpu"]) for r in summary["timeline"] if f"{name}_cpu" in r]
        if pts:
            cpu.plot(*zip(*pts, strict=True), linestyle=":", label=f"{name} CPU %")
    cpu.set_ylabel("CPU %")
    cpu.legend(loc="upper right")
    seen: set[str] = set()
    for r in summary["timeline"]:
        if r["phase"] not in seen:
            seen.add(r["phase"])
            for ax in (top, bottom):
                ax.axvline(r["t"], color="grey", linewidth=0.5)
            top.annotate(r["phase"][:28], (r["t"], 0), rotation=90, fontsize=6, va="bottom")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--managers", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--services", type=int, default=100)
    ap.add_argument("--replicas", type=int, default=1000, help="per service")
    ap.add_argument("--per-process", type=int, default=250, help="simulated nodes per process")
    ap.add_argument("--start-latency", default="0.05-0.2", help="simulated start, seconds")
    ap.add_argument("--update-parallelism", type=int, default=100)
    ap.add_argument("--phases", default="create,update,leader-kill,node-loss")
    ap.add_argument("--sample-interval", type=float, default=1.0)
    ap.add_argument("--probe-interval", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=1800.0, help="give up on a phase after")
    ap.add_argument("--py-spy", default="", help="py-spy to profile the create phase with")
    ap.add_argument("--profile-dir", default="/tmp/shoal-fleet-profile")
    ap.add_argument("--out", default="fleet", help="results/NAME.json and NAME.png")
    ap.add_argument(
        "--keep-logs",
        default="",
        help="copy the managers' logs here (with SHOAL_LOOP_STALL_TRACE=0.5 in the environment, "
        "they show what held an event loop)",
    )
    args = ap.parse_args()
    phases = args.phases.split(",")
    # A timeout's SIGTERM ends the run as Ctrl-C does: what was measured is still written.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    root = Path(tempfile.mkdtemp(prefix="shoal-fleet-", dir="/tmp"))
    bench = Bench(args, root)
    figures: dict[str, Any] = {}
    error = ""
    # Elections after the swarm formed and before the leader kill: leadership lost under load.
    elections: list[int | None] = [None, None]
    try:
        bench.setup()
        elections[0] = bench.elections()
        figures["join"] = {"nodes": args.nodes, "seconds": round(bench.join_seconds, 2)}
        figures["fleet_rss_per_node_kib"] = round(
            sum(proc_usage(f.proc.pid)[1] for f in bench.fleets) / args.nodes / 1024, 1
        )
        for target in (bench.sample, bench.probe):
            threading.Thread(target=target, daemon=True).start()
        if "create" in phases:
            figures["create"] = bench.create()
            print(json.dumps(figures["create"]), flush=True)
        fleet_rss = sum(proc_usage(f.proc.pid)[1] for f in bench.fleets)
        figures["fleet_rss_per_node_kib_loaded"] = round(fleet_rss / args.nodes / 1024, 1)
        if "update" in phases:
            figures["update"] = bench.update()
            print(json.dumps(figures["update"]), flush=True)
        elections[1] = bench.elections()
        if "leader-kill" in phases and args.managers >= 3:
            figures["leader_kill"] = bench.leader_kill()
            print(json.dumps(figures["leader_kill"]), flush=True)
        if "node-loss" in phases:
            figures["node_loss"] = bench.node_loss()
            print(json.dumps(figures["node_loss"]), flush=True)
        bench.mark("done")
    except (Exception, KeyboardInterrupt) as err:  # the figures so far are still written
        error = f"{type(err).__name__}: {err}"
        print(f"FAILED in phase {bench.phase}: {error}", flush=True)
    finally:
        if elections[0] is not None:
            if elections[1] is None:
                elections[1] = bench.elections()
            figures["leader_changes_under_load"] = elections[1] - elections[0]
            # All of them since the swarm formed (before shutting down, which may elect): the
            # leader kill accounts for one.
            figures["elections_after_setup"] = bench.elections() - elections[0]
        bench.close()
        figures["loop_lag"] = {
            m.name: loop_lag(m.log_file.read_text(errors="replace"))
            for m in bench.managers
            if m.log_file.exists()
        }
        if args.keep_logs:
            kept = Path(args.keep_logs)
            kept.mkdir(parents=True, exist_ok=True)
            for m in bench.managers:
                if m.log_file.exists():
                    shutil.copy(m.log_file, kept / f"{m.name}.log")
        logs = {p.name: p.read_text()[-3000:] for p in root.glob("**/*.log") if p.stat().st_size}
        shutil.rmtree(root, ignore_errors=True)

    api: dict[str, Any] = {}
    for call in ("service ls", "node ls", "service inspect", "service update"):
        ms = [c["ms"] for c in bench.api if c["call"] == call and c["ok"]]
        api[call] = {
            "calls": len(ms),
            "failed": sum(1 for c in bench.api if c["call"] == call and not c["ok"]),
            "p50_ms": round(statistics.median(ms), 1) if ms else None,
            "p99_ms": round(pct(ms, 0.99), 1) if ms else None,
            "max_ms": round(max(ms), 1) if ms else None,
        }
    managers: dict[str, Any] = {}
    for m in bench.managers:
        rss = [r[f"{m.name}_rss_mb"] for r in bench.timeline if f"{m.name}_rss_mb" in r]
        cpu = [r[f"{m.name}_cpu"] for r in bench.timeline if f"{m.name}_cpu" in r]
        managers[m.name] = {
            "max_rss_mb": max(rss, default=None),
            "max_cpu_pct": max(cpu, default=None),
            "mean_cpu_pct": round(statistics.mean(cpu), 1) if cpu else None,
        }
    summary = {
        "benchmark": "fleet",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "command": " ".join(sys.argv),
        "config": {
            "managers": args.managers,
            "manager_names": [m.name for m in bench.managers],
            "nodes": args.nodes,
            "services": args.services,
            "replicas": args.replicas,
            "tasks": bench.total,
            "per_process": args.per_process,
            "start_latency": args.start_latency,
            "update_parallelism": args.update_parallelism,
        },
        "error": error,
        "figures": figures,
        "api": api,
        "managers": managers,
        "timeline": bench.timeline,
        "api_calls": bench.api,
    }
    print(json.dumps({k: summary[k] for k in ("figures", "api", "managers")}, indent=2))
    if error:
        for name, text in logs.items():
            print(f"--- {name}\n{text}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(summary, indent=1) + "\n")
    if draw(summary, RESULTS / f"{args.out}.png"):
        print(f"wrote {RESULTS / args.out}.json and .png")
    else:
        print(f"wrote {RESULTS / args.out}.json (no matplotlib: pip install -e '.[bench]')")
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main())
