"""How long a swarm takes to notice a lost worker machine and run its tasks elsewhere.

A manager and three workers, each `shoal daemon` on a host of its own (a network namespace
on a bridge, tests/integration/network/netns.py), all with default settings (heartbeat
period 5 s). Each trial creates a service of six `sleep` processes on the workers, then loses
the worker holding the most of them, and from that instant polls the manager for two times:
the node shown `down`, and every replica running again on the other workers.

Two ways to lose a worker:
- kill: the machine dies at once: SIGKILL to its daemon, then to every process left in its
  namespace (its tasks). Its kernel lives on, so its connections close (FIN/RST): the manager
  sees the session break.
- cut: its link goes down (`ip link set down` on its switch port): nothing is closed; the
  manager hears nothing more (a machine that lost power or network).

After each trial the worker comes back (daemon restarted, or link up) and the next trial waits
for it to be ready.

Prints the figures and writes bench/results/worker_loss.json (both modes: a mode run alone
replaces its own entry).
Run (as root): .venv/bin/python bench/worker_loss.py [--trials 5] [--mode kill|cut|both]
"""

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import checkout_path  # noqa: F401  (first: this checkout's tests/ and src/)

from tests.e2e.harness import Node, kill_tasks_under, wait_for
from tests.e2e.netns_cluster import NetnsCluster
from tests.integration.network.netns import Testbed

RESULTS = Path(__file__).parent / "results" / "worker_loss.json"
WORKERS = 3
REPLICAS = 6
GIVE_UP = 90.0
POLL = 0.05


def tasks_of(m: Node, service: str) -> list[dict]:
    return m.get(f"/tasks?filters={quote(json.dumps({'service': [service]}))}")


def running(tasks: list[dict]) -> list[dict]:
    return [
        t for t in tasks if t["Status"]["State"] == "running" and t["DesiredState"] == "running"
    ]


def create(m: Node, name: str) -> None:
    body = {
        "Name": name,
        "Mode": {"Replicated": {"Replicas": REPLICAS}},
        "TaskTemplate": {
            "Runtime": "process",
            "ContainerSpec": {"Image": "sleep", "Args": ["3600"]},
            "Placement": {"Constraints": ["node.role==worker"]},
        },
    }
    resp = m.api("POST", "/services/create", body)
    assert resp.status == 201, resp.body


def node_state(m: Node, node_id: str) -> str:
    return m.get(f"/nodes/{node_id}")["Status"]["State"]


def lose(mode: str, victim: Node, host: int, bed: Testbed) -> None:
    if mode == "kill":
        victim.kill()
        pids = subprocess.run(
            ["ip", "netns", "pids", bed.ns(host)], capture_output=True, text=True
        ).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    else:
        subprocess.run(["ip", "-n", bed.switch, "link", "set", f"p{host}", "down"], check=True)


def restore(mode: str, victim: Node, host: int, bed: Testbed) -> None:
    if mode == "kill":
        victim.start()
    else:
        subprocess.run(["ip", "-n", bed.switch, "link", "set", f"p{host}", "up"], check=True)


def trial(n: int, mode: str, cluster: NetnsCluster, ids: dict[str, str], bed: Testbed) -> dict:
    m = cluster.manager
    name = f"{mode}{n}"
    create(m, name)
    placed = wait_for(
        lambda: len(r := running(tasks_of(m, name))) == REPLICAS and r, what="all running"
    )
    per_node: dict[str, int] = {}
    for t in placed:
        per_node[t["NodeID"]] = per_node.get(t["NodeID"], 0) + 1
    victim_id = max(per_node, key=lambda i: per_node[i])
    index = next(i for i, node in enumerate(cluster.nodes) if ids[node.name] == victim_id)
    victim, host = cluster.nodes[index], index + 1

    t0 = time.monotonic()
    lose(mode, victim, host, bed)
    down_at = moved_at = None
    while down_at is None or moved_at is None:
        now = time.monotonic() - t0
        if now > GIVE_UP:
            raise RuntimeError(f"trial {n}: not recovered in {GIVE_UP} s")
        if down_at is None and node_state(m, victim_id) == "down":
            down_at = time.monotonic() - t0
        if moved_at is None:
            live = running(tasks_of(m, name))
            if len(live) == REPLICAS and all(t["NodeID"] != victim_id for t in live):
                moved_at = time.monotonic() - t0
        time.sleep(POLL)
    result = {
        "trial": n,
        "victim": victim.name,
        "tasks_lost": per_node[victim_id],
        "node_down_seconds": round(down_at, 3),
        "tasks_running_elsewhere_seconds": round(moved_at, 3),
    }
    print(
        f"{mode} trial {n}: {victim.name} ({per_node[victim_id]} tasks) down after "
        f"{down_at:.2f} s, its tasks running elsewhere after {moved_at:.2f} s",
        flush=True,
    )
    service_id = placed[0]["ServiceID"]
    m.api("DELETE", f"/services/{name}")
    restore(mode, victim, host, bed)
    wait_for(lambda: node_state(m, victim_id) == "ready", what=f"{victim.name} back")
    wait_for(
        lambda: all(t["ServiceID"] != service_id for t in m.get("/tasks")),
        what="the service's tasks gone",
    )
    return result


def summarize(results: list[dict]) -> dict:
    down = [r["node_down_seconds"] for r in results]
    moved = [r["tasks_running_elsewhere_seconds"] for r in results]
    return {
        "trials": len(results),
        "node_down_median_seconds": round(statistics.median(down), 3),
        "node_down_max_seconds": max(down),
        "tasks_running_elsewhere_median_seconds": round(statistics.median(moved), 3),
        "tasks_running_elsewhere_max_seconds": max(moved),
        "results": results,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--mode", choices=["kill", "cut", "both"], default="both")
    ap.add_argument(
        "--daemon-arg",
        action="append",
        default=[],
        help="extra `shoal daemon` argument for every node (default: none, default settings)",
    )
    args = ap.parse_args()
    modes = ["kill", "cut"] if args.mode == "both" else [args.mode]

    root = Path(tempfile.mkdtemp(prefix="shoal-wloss-", dir="/tmp"))
    bed = Testbed(1 + WORKERS).up()
    cluster = NetnsCluster(root, bed, daemon_args=args.daemon_arg)
    summary: dict = {}
    try:
        m = cluster.add("manager1")
        cluster.init()
        for i in range(WORKERS):
            cluster.join_worker(cluster.add(f"worker{i + 1}"))
        ids = {n.name: cluster.node_id(n) for n in cluster.nodes}
        wait_for(
            lambda: all(n["Status"]["State"] == "ready" for n in m.get("/nodes")),
            what="every node ready",
        )
        for mode in modes:
            results = [trial(n, mode, cluster, ids, bed) for n in range(args.trials)]
            summary[mode] = summarize(results)
            s = summary[mode]
            print(
                f"\n{mode}: node down median {s['node_down_median_seconds']:.2f} s "
                f"(max {s['node_down_max_seconds']:.2f}), tasks running elsewhere median "
                f"{s['tasks_running_elsewhere_median_seconds']:.2f} s "
                f"(max {s['tasks_running_elsewhere_max_seconds']:.2f})\n",
                flush=True,
            )
    finally:
        for n in cluster.nodes:
            n.stop()
        kill_tasks_under(root)
        bed.down()
        shutil.rmtree(root, ignore_errors=True)

    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    out = {
        "benchmark": "worker_loss",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "managers": 1,
        "workers": WORKERS,
        "replicas": REPLICAS,
        "daemon_args": args.daemon_arg,
        "target_seconds": 5.0,
        "modes": {**previous.get("modes", {}), **summary},
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
