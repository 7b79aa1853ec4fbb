"""How long a swarm of 3 managers is without a leader when the leader dies.

Three `shoal daemon` processes on loopback addresses (127.0.45.1-3) form a swarm of three
managers. Each trial SIGKILLs the current leader and, from that instant, keeps asking a
surviving manager (through its Docker API socket) to create a service; the figure is the
time from the kill to the first creation acknowledged (HTTP 201): detection (an election
timeout without heartbeats), pre-vote, election, the new leader's no-op, the write itself,
and forwarding from the follower that received it. The killed manager is then restarted
from its disk and the next trial waits until all three are reachable again.

Swarm takes 10 to 20 s here (its election timeout is 10 to 20 one-second ticks); the target
for shoal is under 2 s.

Prints the figures and writes bench/results/failover.json.
Run: .venv/bin/python bench/failover.py [--trials 20]
"""

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import checkout_path  # noqa: F401  (first: this checkout's tests/ and src/)

from tests.e2e.harness import Node, wait_for

RESULTS = Path(__file__).parent / "results" / "failover.json"
GIVE_UP = 60.0


def manager_status(via: Node) -> dict[str, str]:
    out = {}
    for n in via.get("/nodes"):
        ms = n.get("ManagerStatus") or {}
        name = n["Description"]["Hostname"]
        out[name] = "Leader" if ms.get("Leader") else ms.get("Reachability", "")
    return out


def create(via: Node, name: str) -> bool:
    body = {
        "Name": name,
        "Mode": {"Replicated": {"Replicas": 0}},
        "TaskTemplate": {"Runtime": "process", "ContainerSpec": {"Image": "sleep"}},
    }
    try:
        return via.api("POST", "/services/create", body).status == 201
    except OSError:
        return False


def agreed_leader(nodes: list[Node]) -> str:
    """The leader every manager's view names, all three reachable; "" if they disagree."""
    leaders = set()
    for via in nodes:
        status = manager_status(via)
        if sorted(status.values()) != ["Leader", "reachable", "reachable"]:
            return ""
        leaders.add(next(name for name, s in status.items() if s == "Leader"))
    return leaders.pop() if len(leaders) == 1 else ""


def agreed_leader_of(survivors: list[Node]) -> str:
    views = [manager_status(n) for n in survivors]
    leaders = {next((k for k, v in view.items() if v == "Leader"), "") for view in views}
    return leaders.pop() if len(leaders) == 1 else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="shoal-failover-", dir="/tmp"))
    nodes = [Node(name=f"m{i}", host=f"127.0.45.{i}", root=root / f"m{i}") for i in (1, 2, 3)]
    results: list[dict] = []
    try:
        for n in nodes:
            n.start()
        m1 = nodes[0]
        m1.cli("swarm", "init", "--advertise-addr", m1.host)
        token = m1.cli("swarm", "join-token", "-q", "manager").stdout.strip()
        for n in nodes[1:]:
            n.cli("swarm", "join", "--token", token, m1.addr)
        wait_for(lambda: agreed_leader(nodes), what="three healthy managers")

        for trial in range(args.trials):
            name = wait_for(lambda: agreed_leader(nodes), what="an agreed leader")
            leader = next(n for n in nodes if n.name == name)
            survivors = [n for n in nodes if n is not leader]
            assert create(survivors[0], f"before{trial}")
            t0 = time.monotonic()
            leader.kill()
            attempts = 0
            while True:
                attempts += 1
                via = survivors[attempts % 2]
                if create(via, f"after{trial}"):
                    break
                if time.monotonic() - t0 > GIVE_UP:
                    raise RuntimeError(f"trial {trial}: no write accepted in {GIVE_UP} s")
            seconds = time.monotonic() - t0
            new_leader = wait_for(lambda s=survivors: agreed_leader_of(s), what="new leader")
            results.append(
                {
                    "trial": trial,
                    "killed": leader.name,
                    "new_leader": new_leader,
                    "seconds": round(seconds, 3),
                    "attempts": attempts,
                }
            )
            print(f"trial {trial:2d}: killed {leader.name}, write accepted after {seconds:.3f} s")
            leader.start()
            wait_for(lambda: agreed_leader(nodes), what="the killed manager back")
    finally:
        for n in nodes:
            n.stop()
        logs = {n.name: n.log_file.read_text()[-4000:] for n in nodes if n.log_file.exists()}
        shutil.rmtree(root, ignore_errors=True)

    times = [r["seconds"] for r in results]
    summary = {
        "benchmark": "failover",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "managers": 3,
        "trials": len(times),
        "median_seconds": round(statistics.median(times), 3),
        "max_seconds": max(times),
        "min_seconds": min(times),
        "mean_seconds": round(statistics.mean(times), 3),
        "target_seconds": 2.0,
        "results": results,
    }
    print(
        f"\n{len(times)} trials: median {summary['median_seconds']:.3f} s, "
        f"max {summary['max_seconds']:.3f} s, min {summary['min_seconds']:.3f} s"
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    if not times:
        print(logs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
