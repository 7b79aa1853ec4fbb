"""bench/worker_loss.py's measure on Docker's own Swarm, for comparison.

A Docker Engine (dockerd) on each of five hosts (network namespaces on a bridge, as
tests/e2e/netns_engines.py makes them): one manager and four workers, default settings. One
service of six `sleep` containers (the test image) on the workers. Each trial loses the worker
holding the most of them, as bench/worker_loss.py does (kill: SIGKILL its dockerd, its
containerd and shims, and its containers' processes; cut: its link down), and polls the
manager for the node `down` and every replica running again elsewhere. A lost worker is not
brought back: one trial per worker but the last.

Prints the figures and writes bench/results/worker_loss_docker.json.
Run (as root): .venv/bin/python bench/worker_loss_docker.py [--mode kill|cut]
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.docker.testimage import IMAGE  # noqa: E402
from tests.e2e.harness import wait_for  # noqa: E402
from tests.e2e.netns_engines import HostEngines  # noqa: E402
from tests.integration.network.netns import Testbed  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from worker_loss import summarize  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "worker_loss_docker.json"
WORKERS = 4
REPLICAS = 6
GIVE_UP = 120.0
POLL = 0.05


def docker_json(engines: HostEngines, host: int, *args: str) -> list[dict]:
    out = engines.docker(host, *args, "--format", "{{json .}}").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def tasks(engines: HostEngines) -> list[dict]:
    # The API's view (IDs and states), through the CLI's inspect of every task.
    ids = engines.docker(1, "service", "ps", "-q", "--no-trunc", "loss").stdout.split()
    if not ids:
        return []
    return json.loads(engines.docker(1, "inspect", "--type", "task", *ids).stdout)


def running(ts: list[dict]) -> list[dict]:
    return [t for t in ts if t["Status"]["State"] == "running" and t["DesiredState"] == "running"]


def node_state(engines: HostEngines, node_id: str) -> str:
    return json.loads(engines.docker(1, "node", "inspect", node_id).stdout)[0]["Status"]["State"]


def lose(mode: str, engines: HostEngines, bed: Testbed, host: int, victim_tasks: list) -> None:
    if mode == "cut":
        subprocess.run(["ip", "-n", bed.switch, "link", "set", f"p{host}", "down"], check=True)
        return
    pids = [
        t["Status"]["ContainerStatus"].get("PID")
        for t in victim_tasks
        if t["Status"].get("ContainerStatus")
    ]
    engines.procs[host - 1].send_signal(signal.SIGKILL)
    ns_pids = subprocess.run(
        ["ip", "netns", "pids", bed.ns(host)], capture_output=True, text=True
    ).stdout.split()
    for pid in [*ns_pids, *(str(p) for p in pids if p)]:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass


def remove_leftovers(engines: HostEngines) -> None:
    """What a killed dockerd could not clean up: the network namespaces it had mounted under
    its exec root (its ingress sandbox, its containers'), and its pid file and socket."""
    roots = [str(r) for r in engines.roots]
    with open("/proc/mounts") as f:
        mounts = [line.split()[1] for line in f]
    for m in mounts:
        if any(m.startswith(r + "/") for r in roots):
            subprocess.run(["umount", "-l", m], capture_output=True)
    for r in roots:
        shutil.rmtree(r, ignore_errors=True)
    for i in range(1, engines.hosts + 1):
        for leftover in (Path(engines.socket(i)), Path(f"/run/shoal-{engines.bed.tag}-d{i}.pid")):
            leftover.unlink(missing_ok=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["kill", "cut"], default="kill")
    args = ap.parse_args()

    bed = Testbed(1 + WORKERS).up()
    engines = HostEngines(bed, 1 + WORKERS)
    results = []
    try:
        engines.start()
        engines.docker(1, "swarm", "init", "--advertise-addr", bed.addr(1))
        token = engines.docker(1, "swarm", "join-token", "-q", "worker").stdout.strip()
        for h in range(2, WORKERS + 2):
            engines.docker(h, "swarm", "join", "--token", token, f"{bed.addr(1)}:2377")
        host_of = {}
        for h in range(2, WORKERS + 2):
            info = json.loads(engines.docker(h, "info", "--format", "{{json .Swarm}}").stdout)
            host_of[info["NodeID"]] = h
        engines.docker(
            1, "service", "create", "-d", "--name", "loss", "--replicas", str(REPLICAS),
            "--constraint", "node.role==worker", IMAGE, "sleep", "3600",
        )  # fmt: skip
        for n in range(WORKERS - 1):
            placed = wait_for(
                lambda: len(r := running(tasks(engines))) == REPLICAS and r,
                timeout=GIVE_UP,
                what="all running",
            )
            per_node: dict[str, list] = {}
            for t in placed:
                per_node.setdefault(t["NodeID"], []).append(t)
            victim = max(per_node, key=lambda i: len(per_node[i]))
            host = host_of[victim]
            t0 = time.monotonic()
            lose(args.mode, engines, bed, host, per_node[victim])
            down_at = moved_at = None
            while down_at is None or moved_at is None:
                if time.monotonic() - t0 > GIVE_UP:
                    raise RuntimeError(f"trial {n}: not recovered in {GIVE_UP} s")
                if down_at is None and node_state(engines, victim) == "down":
                    down_at = time.monotonic() - t0
                if moved_at is None:
                    live = running(tasks(engines))
                    if len(live) == REPLICAS and all(t["NodeID"] != victim for t in live):
                        moved_at = time.monotonic() - t0
                time.sleep(POLL)
            results.append(
                {
                    "trial": n,
                    "victim_host": host,
                    "tasks_lost": len(per_node[victim]),
                    "node_down_seconds": round(down_at, 3),
                    "tasks_running_elsewhere_seconds": round(moved_at, 3),
                }
            )
            print(
                f"docker {args.mode} trial {n}: host {host} ({len(per_node[victim])} tasks) "
                f"down after {down_at:.2f} s, its tasks running elsewhere after "
                f"{moved_at:.2f} s",
                flush=True,
            )
    finally:
        engines.stop()
        bed.down()
        remove_leftovers(engines)

    down = [r["node_down_seconds"] for r in results]
    moved = [r["tasks_running_elsewhere_seconds"] for r in results]
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    version = subprocess.run(["dockerd", "--version"], capture_output=True, text=True).stdout
    out = {
        "benchmark": "worker_loss_docker",
        "docker": version.strip(),
        "machine": platform.machine(),
        "managers": 1,
        "workers": WORKERS,
        "replicas": REPLICAS,
        "modes": {
            **previous.get("modes", {}),
            args.mode: summarize(results),  # as worker_loss.py sums up shoal's trials
        },
    }
    print(
        f"\ndocker {args.mode}: node down median {statistics.median(down):.2f} s, tasks "
        f"running elsewhere median {statistics.median(moved):.2f} s"
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
