"""How long a ``--dry-run`` plan takes on a large cluster: the store copied, the change made
on the copy and the leader's loops run on it (agents and time simulated) until it settles.

Cases, on a cluster of M nodes already running T tasks (in services of 100 replicas):
- create: a new service of 100 replicas;
- scale: one of the services from 100 to 200 replicas;
- update: one of the services to a new image, parallelism 10 (10 batches, delay 10s: the
  simulated time passes at once).

Prints a table and writes bench/results/plan.json.
Run: .venv/bin/python bench/plan.py [--quick]
"""

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time
from pathlib import Path

from shoal.api.objects import Service
from shoal.api.types import TaskState
from shoal.clock import SystemClock
from shoal.manager.allocator import allocate_endpoint
from shoal.manager.controlapi.control import ControlAPI
from shoal.manager.orchestrator import new_task
from shoal.manager.plan import plan_service_create, plan_service_update
from shoal.store import MemoryStore, Tx

sys.path.insert(0, str(Path(__file__).parent))
from store_fill import ready_node

RESULTS = Path(__file__).parent / "results" / "plan.json"
REPLICAS = 100


def spec(name: str, replicas: int = REPLICAS, image: str = "img:1") -> dict:
    return {
        "Name": name,
        "TaskTemplate": {"ContainerSpec": {"Image": image}, "Runtime": "process"},
        "Mode": {"Replicated": {"Replicas": replicas}},
        "UpdateConfig": {"Parallelism": 10, "Delay": 10 * 10**9},
    }


async def cluster(nodes: int, tasks: int) -> tuple[MemoryStore, SystemClock]:
    clock = SystemClock()
    store = MemoryStore(clock=clock)

    def add_nodes(tx: Tx) -> None:
        for i in range(nodes):
            tx.create(ready_node(i))

    await store.update(add_nodes)
    control = ControlAPI(store, clock, allocate_endpoint=allocate_endpoint)
    placed = 0
    for s in range(tasks // REPLICAS):
        service = await control.create_service(spec(f"svc{s}"))

        def add_tasks(tx: Tx, service: Service = service, first: int = placed) -> None:
            for slot in range(1, REPLICAS + 1):
                t = new_task(service, now=clock.now(), slot=slot)
                t.NodeID = f"node{(first + slot) % nodes:05d}"
                t.Status.State = TaskState.RUNNING
                tx.create(t)

        await store.update(add_tasks)
        placed += REPLICAS
    return store, clock


async def measure(nodes: int, tasks: int, repeat: int) -> list[dict]:
    store, clock = await cluster(nodes, tasks)
    svc = store.view().service_by_name("svc0")
    assert svc is not None
    cases = {
        "create": lambda: plan_service_create(store, clock, spec("new")),
        "scale": lambda: plan_service_update(
            store, clock, svc.ID, svc.Version.Index, spec("svc0", replicas=2 * REPLICAS)
        ),
        "update": lambda: plan_service_update(
            store, clock, svc.ID, svc.Version.Index, spec("svc0", image="img:2")
        ),
    }
    results = []
    for case, run in cases.items():
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            plan = await run()
            runs.append(time.perf_counter() - start)
        summary = plan.services[0].to_json()["Summary"]
        results.append(
            {
                "nodes": nodes,
                "tasks": tasks,
                "case": case,
                "seconds": statistics.median(runs),
                "runs_seconds": runs,
                "summary": summary,
                "update_batches": (plan.services[0].update or {}).get("Batches", 0),
            }
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="the small cluster only")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [(10, 1000)] if args.quick else [(10, 1000), (100, 10000)]
    results = []
    print(f"{'nodes':>6} {'tasks':>7} {'case':>7} {'seconds':>8}  summary")
    for nodes, tasks in sizes:
        for r in asyncio.run(measure(nodes, tasks, args.repeat)):
            results.append(r)
            s = r["summary"]
            what = ", ".join(f"{k.lower()} {v}" for k, v in s.items() if v)
            if r["update_batches"]:
                what += f", {r['update_batches']} batches"
            print(f"{nodes:>6} {tasks:>7} {r['case']:>7} {r['seconds']:>8.2f}  {what}")
            sys.stdout.flush()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "plan",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "repeat": args.repeat,
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
