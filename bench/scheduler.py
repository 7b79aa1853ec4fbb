"""How fast the scheduler places tasks: N pending tasks onto M nodes, through a MemoryStore and
the real Scheduler loop (events in, batched writes out).

Two cases for each size:
- cold: the tasks are already pending when the scheduler starts (a new leader taking over);
- stream: the scheduler is running and the tasks arrive in transactions of 200 (as the
  orchestrator and allocator write them); timed from the first write to the last assignment.

Prints a table and writes bench/results/scheduler.json. Run: .venv/bin/python bench/scheduler.py
(--quick for the small sizes only).
"""

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from shoal.api.ids import new_id
from shoal.api.objects import Node, NodeDescription, NodeResources, NodeStatus, Task, TaskStatus
from shoal.api.specs import (
    NodeSpec,
    Placement,
    ResourceRequirements,
    ResourceReservations,
    TaskSpec,
)
from shoal.api.types import NodeState, TaskState
from shoal.clock import SystemClock
from shoal.manager.scheduler import Scheduler
from shoal.store import MemoryStore

RESULTS = Path(__file__).parent / "results" / "scheduler.json"
CHUNK = 200


def make_nodes(m: int) -> list[Node]:
    return [
        Node(
            ID=f"node{i:05d}",
            Spec=NodeSpec(),
            Description=NodeDescription(
                Hostname=f"host{i}",
                Resources=NodeResources(NanoCPUs=64 * 10**9, MemoryBytes=1 << 40),
                Runtimes=["process"],
            ),
            Status=NodeStatus(State=NodeState.READY),
        )
        for i in range(m)
    ]


def make_tasks(n: int, services: int = 10) -> list[Task]:
    # Several services, each with a reservation and a constraint, so the resource and
    # constraint filters run as they would in a real cluster.
    service_ids = [new_id() for _ in range(services)]
    return [
        Task(
            ID=new_id(),
            ServiceID=service_ids[i % services],
            Slot=i // services + 1,
            DesiredState=TaskState.RUNNING,
            Status=TaskStatus(State=TaskState.PENDING, Message="pending task scheduling"),
            Spec=TaskSpec(
                Runtime="process",
                Resources=ResourceRequirements(
                    Reservations=ResourceReservations(MemoryBytes=1 << 20)
                ),
                Placement=Placement(Constraints=["node.role==worker"]),
            ),
        )
        for i in range(n)
    ]


async def wait_assigned(store: MemoryStore, sub, n: int) -> float:
    """Wait until n task updates to 'assigned' were seen; return the time of the last."""
    seen = 0
    async for ev in sub:
        if ev.is_commit or ev.obj is None:
            continue
        if ev.obj.Status.State == TaskState.ASSIGNED and (
            ev.old is None or ev.old.Status.State != TaskState.ASSIGNED
        ):
            seen += 1
            if seen == n:
                return time.perf_counter()
    raise RuntimeError("store closed early")


def spread(store: MemoryStore) -> tuple[int, int]:
    counts = Counter(t.NodeID for t in store.view().list(Task) if t.NodeID)
    return (min(counts.values()), max(counts.values())) if counts else (0, 0)


async def cold(n: int, m: int) -> dict:
    store = MemoryStore(clock=SystemClock())
    await store.batch([(lambda tx, o=o: tx.create(o)) for o in make_nodes(m)])
    await store.batch([(lambda tx, o=o: tx.create(o)) for o in make_tasks(n)])
    sub = store.watch(kinds={"task"})
    start = time.perf_counter()
    runner = asyncio.create_task(Scheduler(store, SystemClock()).run())
    end = await wait_assigned(store, sub, n)
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    lo, hi = spread(store)
    store.close()
    return {"seconds": end - start, "tasks_per_second": n / (end - start), "spread": [lo, hi]}


async def stream(n: int, m: int) -> dict:
    store = MemoryStore(clock=SystemClock())
    await store.batch([(lambda tx, o=o: tx.create(o)) for o in make_nodes(m)])
    tasks = make_tasks(n)
    runner = asyncio.create_task(Scheduler(store, SystemClock()).run())
    await asyncio.sleep(0)
    sub = store.watch(kinds={"task"})
    start = time.perf_counter()
    for i in range(0, n, CHUNK):
        chunk = tasks[i : i + CHUNK]
        await store.update(lambda tx, chunk=chunk: [tx.create(t) for t in chunk])
        await asyncio.sleep(0)  # other writers get turns, as in a real manager
    written = time.perf_counter()
    end = await wait_assigned(store, sub, n)
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    lo, hi = spread(store)
    store.close()
    return {
        "seconds": end - start,
        "create_seconds": written - start,
        "tasks_per_second": n / (end - start),
        "spread": [lo, hi],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only 1k tasks, 10 and 100 nodes")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (median reported)")
    args = parser.parse_args()
    sizes = [(n, m) for n in (1_000, 10_000) for m in (10, 100, 1_000)]
    if args.quick:
        sizes = [(1_000, 10), (1_000, 100)]

    rows = []
    print(f"{'tasks':>7} {'nodes':>6} {'case':>7} {'seconds':>9} {'tasks/s':>9}  spread")
    for n, m in sizes:
        for name, case in (("cold", cold), ("stream", stream)):
            runs = [await case(n, m) for _ in range(args.repeat)]
            best = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
            row = {"tasks": n, "nodes": m, "case": name, **best}
            row["runs_seconds"] = [r["seconds"] for r in runs]
            rows.append(row)
            lo, hi = best["spread"]
            print(
                f"{n:>7} {m:>6} {name:>7} {best['seconds']:>9.3f} "
                f"{best['tasks_per_second']:>9.0f}  {lo}-{hi} per node"
            )

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "scheduler",
                "python": sys.version.split()[0],
                "machine": platform.machine(),
                "repeat": args.repeat,
                "median_tasks_per_second": statistics.median(r["tasks_per_second"] for r in rows),
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    asyncio.run(main())
