"""How fast the scheduler places tasks: N pending tasks onto M nodes, through a MemoryStore and
the real Scheduler loop (events in, batched writes out).

Tasks are made as the replicated orchestrator makes them (``new_task`` from a service: the
service's task template, annotations and endpoint), for 10 services, each with a memory
reservation and a constraint so the resource and constraint filters run as in a real cluster.

Two cases for each size:
- cold: the tasks are already pending when the scheduler starts (a new leader taking over):
  the scheduler alone, timed from its start to the last assignment committed;
- stream: the whole path of a manager: the orchestrator's writes (new tasks in batches of
  ``MAX_CHANGES_PER_PROPOSAL``, through ``store.batch``), the real Allocator moving them to
  pending and the Scheduler assigning them, all running at once; timed from the first write
  to the last assignment.

The garbage collector is set as a manager daemon sets it (``tune_gc``). CPU seconds (this
process's) are reported beside the wall clock, which other load on the machine inflates.

Prints a table and writes bench/results/scheduler.json.
Run: .venv/bin/python bench/scheduler.py [--quick | --size TASKS NODES] [--repeat N]
(default: 1k and 10k tasks on 10, 100, 1,000 nodes, then 100k tasks on 1,000 nodes).
"""

import argparse
import asyncio
import datetime as dt
import platform
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from shoal.api.ids import new_id
from shoal.api.objects import Service, Task
from shoal.api.specs import ServiceSpec
from shoal.api.types import TaskState
from shoal.clock import SystemClock
from shoal.manager.allocator import Allocator
from shoal.manager.orchestrator.task import new_task
from shoal.manager.scheduler import Scheduler
from shoal.store import MemoryStore
from shoal.store.gc_tuning import tune_gc

sys.path.insert(0, str(Path(__file__).parent))
from result_file import write_result
from store_fill import ready_node

RESULTS = Path(__file__).parent / "results" / "scheduler.json"
SERVICES = 10


def make_services(n: int) -> list[Service]:
    return [
        Service(
            ID=new_id(),
            Spec=ServiceSpec.model_validate(
                {
                    "Name": f"svc{s}",
                    "TaskTemplate": {
                        "ContainerSpec": {"Image": "busybox", "Args": ["sleep", "1d"]},
                        "Resources": {"Reservations": {"MemoryBytes": 1 << 20}},
                        "Placement": {"Constraints": ["node.role==worker"]},
                        "Runtime": "process",
                    },
                    "Mode": {"Replicated": {"Replicas": n // SERVICES}},
                }
            ),
        )
        for s in range(SERVICES)
    ]


def make_tasks(services: list[Service], n: int, state: TaskState) -> list[Task]:
    """n tasks spread over ``services``, as the orchestrator makes them (state NEW), or as the
    allocator leaves them (PENDING)."""
    now = dt.datetime.now(dt.UTC)
    tasks = []
    for i in range(n):
        task = new_task(services[i % len(services)], now=now, slot=i // len(services) + 1)
        if state is TaskState.PENDING:
            task.Status.State = TaskState.PENDING
            task.Status.Message = "pending task scheduling"
        tasks.append(task)
    return tasks


async def setup(n: int, m: int, state: TaskState) -> tuple[MemoryStore, list[Task]]:
    store = MemoryStore(clock=SystemClock())
    services = make_services(n)
    await store.batch([(lambda tx, o=o: tx.create(o)) for o in map(ready_node, range(m))])
    await store.batch([(lambda tx, o=o: tx.create(o)) for o in services])
    return store, make_tasks(services, n, state)


async def wait_assigned(sub, n: int) -> float:
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


async def stop(*runners: asyncio.Task) -> None:
    for r in runners:
        r.cancel()
    await asyncio.gather(*runners, return_exceptions=True)


async def cold(n: int, m: int) -> dict:
    store, tasks = await setup(n, m, TaskState.PENDING)
    await store.batch([(lambda tx, o=o: tx.create(o)) for o in tasks])
    del tasks
    sub = store.watch(kinds={"task"})
    start, cpu = time.perf_counter(), time.process_time()
    runner = asyncio.create_task(Scheduler(store, SystemClock()).run())
    end = await wait_assigned(sub, n)
    cpu = time.process_time() - cpu
    await stop(runner)
    lo, hi = spread(store)
    store.close()
    return {
        "seconds": end - start,
        "cpu_seconds": cpu,
        "tasks_per_second": n / (end - start),
        "spread": [lo, hi],
    }


async def stream(n: int, m: int) -> dict:
    store, tasks = await setup(n, m, TaskState.NEW)
    runners = [
        asyncio.create_task(Allocator(store, SystemClock()).run()),
        asyncio.create_task(Scheduler(store, SystemClock()).run()),
    ]
    await asyncio.sleep(0)
    sub = store.watch(kinds={"task"})
    start, cpu = time.perf_counter(), time.process_time()
    # As the replicated orchestrator writes new slots: one store.batch per reconcile pass
    # (here, one per service), split into proposals of MAX_CHANGES_PER_PROPOSAL.
    for s in range(SERVICES):
        await store.batch([(lambda tx, t=t: tx.create(t)) for t in tasks[s::SERVICES]])
    written = time.perf_counter()
    del tasks
    end = await wait_assigned(sub, n)
    cpu = time.process_time() - cpu
    await stop(*runners)
    lo, hi = spread(store)
    store.close()
    return {
        "seconds": end - start,
        "cpu_seconds": cpu,
        "create_seconds": written - start,
        "tasks_per_second": n / (end - start),
        "spread": [lo, hi],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only 1k tasks, 10 and 100 nodes")
    parser.add_argument("--size", nargs=2, type=int, metavar=("TASKS", "NODES"))
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (median reported)")
    parser.add_argument("--case", choices=["cold", "stream"], help="only this case")
    args = parser.parse_args()
    tune_gc()  # as a manager daemon does

    sizes = [(n, m) for n in (1_000, 10_000) for m in (10, 100, 1_000)] + [(100_000, 1_000)]
    if args.quick:
        sizes = [(1_000, 10), (1_000, 100)]
    if args.size:
        sizes = [tuple(args.size)]
    cases = [("cold", cold), ("stream", stream)]
    if args.case:
        cases = [c for c in cases if c[0] == args.case]

    rows = []
    print(
        f"{'tasks':>7} {'nodes':>6} {'case':>7} {'seconds':>9} {'cpu s':>7} {'tasks/s':>9}  spread"
    )
    for n, m in sizes:
        for name, case in cases:
            runs = [await case(n, m) for _ in range(args.repeat)]
            best = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
            row = {"tasks": n, "nodes": m, "case": name, **best}
            row["runs_seconds"] = [r["seconds"] for r in runs]
            row["runs_cpu_seconds"] = [r["cpu_seconds"] for r in runs]
            rows.append(row)
            lo, hi = best["spread"]
            print(
                f"{n:>7} {m:>6} {name:>7} {best['seconds']:>9.3f} {best['cpu_seconds']:>7.3f} "
                f"{best['tasks_per_second']:>9.0f}  {lo}-{hi} per node",
                flush=True,
            )

    write_result(
        RESULTS,
        {
            "benchmark": "scheduler",
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "repeat": args.repeat,
            "median_tasks_per_second": statistics.median(r["tasks_per_second"] for r in rows),
            "results": rows,
        },
    )


if __name__ == "__main__":
    asyncio.run(main())
