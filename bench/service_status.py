"""How long `GET /services?status=true` (what `docker service ls` asks) holds a manager's event
loop on a large store (issue 15): the handler is called in process, a probe task measures the
longest stretch the loop ran nothing else, and the whole answer's wall time.

The store: --services replicated services sharing --tasks tasks, 90% of each service's tasks
running and the rest old ones shut down (a service's history).

Since the counts are kept as the store changes (service_counts), the first answer counts the
tasks from the tables once (as after a restore): it is reported apart from the next --runs. The
price of keeping them is paid at each write: --churn task changes (state flips written
PER_UPDATE a proposal, as the dispatcher's status reports are) are timed after the answers,
in turn with the counts kept and not (their listener closed), 3 times each.

Prints a table and writes bench/results/service_status[-LABEL].json.
Run: .venv/bin/python bench/service_status.py [--tasks 100000 --services 100 --runs 5]
Before/after on the same machine: PYTHONPATH=<an older src> .venv/bin/python bench/... --label before
"""

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from shoal.api.objects import Task
from shoal.api.types import TaskState
from shoal.clock import SystemClock
from shoal.engineapi import services as services_api
from shoal.engineapi.responses import BACKEND
from shoal.manager.allocator import allocate_endpoint
from shoal.manager.controlapi.control import ControlAPI
from shoal.manager.orchestrator import new_task
from shoal.store import MemoryStore, Tx

sys.path.insert(0, str(Path(__file__).parent))
from result_file import write_labelled_result

PER_UPDATE = 200  # tasks written per store update (a proposal's limit)


async def build(tasks: int, services: int) -> ControlAPI:
    clock = SystemClock()
    store = MemoryStore(clock=clock)
    control = ControlAPI(store, clock, allocate_endpoint=allocate_endpoint)
    per_service = tasks // services
    for s in range(services):
        service = await control.create_service(
            {
                "Name": f"svc{s}",
                "TaskTemplate": {"ContainerSpec": {"Image": "img:1"}, "Runtime": "process"},
                "Mode": {"Replicated": {"Replicas": per_service * 9 // 10}},
            }
        )
        for first in range(0, per_service, PER_UPDATE):

            def add(tx: Tx, first: int = first, service: Any = service) -> None:
                for i in range(first, min(first + PER_UPDATE, per_service)):
                    t = new_task(service, now=clock.now(), slot=i % (per_service * 9 // 10) + 1)
                    t.NodeID = f"node{i % 1000:05d}"
                    if i < per_service * 9 // 10:
                        t.Status.State = TaskState.RUNNING
                    else:
                        t.Status.State = TaskState.SHUTDOWN
                        t.DesiredState = TaskState.SHUTDOWN
                    tx.create(t)

            await store.update(add)
    return control


class _Backend:
    def __init__(self, control: ControlAPI) -> None:
        self._control = control

    def control(self) -> ControlAPI:
        return self._control


T = TypeVar("T")


async def longest_stall(work: Awaitable[T]) -> tuple[float, float, T]:
    """(wall seconds of awaiting ``work``, longest seconds the loop ran nothing else, its
    result)."""
    longest = 0.0
    done = False

    async def probe() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0)
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now

    prober = asyncio.ensure_future(probe())
    await asyncio.sleep(0)
    started = time.perf_counter()
    result = await work
    wall = time.perf_counter() - started
    done = True
    await prober
    return wall, longest, result


async def one_answer(app: web.Application) -> tuple[float, float, bytes]:
    """(wall seconds, longest seconds the loop ran nothing else, body)."""
    request = make_mocked_request("GET", "/services?status=true", app=app)
    wall, longest, resp = await longest_stall(services_api.list_services(request))
    assert isinstance(resp, web.Response) and resp.body is not None
    return wall, longest, bytes(resp.body)  # type: ignore[arg-type]


async def churn_seconds(control: ControlAPI, changes: int) -> float:
    """Seconds to write ``changes`` task changes, PER_UPDATE a proposal: running tasks that
    fail, then run again (each moves a count)."""
    store = control.store
    running = [t for t in store.view().list(Task) if t.Status.State == TaskState.RUNNING]
    started = time.perf_counter()
    for first in range(0, changes, PER_UPDATE):

        def flip(tx: Tx, first: int = first) -> None:
            for n in range(first, min(first + PER_UPDATE, changes)):
                current = tx.get(Task, running[n % len(running)].ID)
                assert current is not None
                t = current.clone()
                failed = t.Status.State == TaskState.RUNNING
                t.Status.State = TaskState.FAILED if failed else TaskState.RUNNING
                tx.update(t)

        await store.update(flip)
    return time.perf_counter() - started


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--services", type=int, default=100)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--churn", type=int, default=20_000)
    ap.add_argument("--label", default="")
    args = ap.parse_args()

    t0 = time.perf_counter()
    control = await build(args.tasks, args.services)
    print(
        f"store: {args.tasks} tasks, {args.services} services in {time.perf_counter() - t0:.1f} s"
    )
    app = web.Application()
    app[BACKEND] = _Backend(control)  # type: ignore[assignment]

    first_wall, first_stall, _ = await one_answer(app)
    print(
        f"first answer: wall {first_wall * 1000:.1f} ms, longest stall {first_stall * 1000:.1f} ms"
    )
    walls, stalls = [], []
    body = b""
    for _ in range(args.runs):
        wall, stall, body = await one_answer(app)
        walls.append(wall)
        stalls.append(stall)
    kept: list[float] = []
    not_kept: list[float] = []
    counts = getattr(control, "service_counts", None)  # None: the code before
    for _ in range(3):
        if counts is not None:
            counts.close()
            not_kept.append(await churn_seconds(control, args.churn))
            counts.tallies()  # listening again (and counted from the tables: not timed)
        kept.append(await churn_seconds(control, args.churn))
    print(
        f"{args.churn} task changes written in {statistics.median(kept) * 1000:.0f} ms (median of 3)"
        + (f", {statistics.median(not_kept) * 1000:.0f} ms with no counts kept" if not_kept else "")
    )
    listed = json.loads(body)
    running = sum(s["ServiceStatus"]["RunningTasks"] for s in listed)
    print(f"{'run':>4} {'wall ms':>9} {'longest stall ms':>17}")
    for i, (w, s) in enumerate(zip(walls, stalls, strict=True)):
        print(f"{i:>4} {w * 1000:>9.1f} {s * 1000:>17.1f}")
    print(
        f"median wall {statistics.median(walls) * 1000:.1f} ms, median longest stall "
        f"{statistics.median(stalls) * 1000:.1f} ms; {len(listed)} services, {running} running"
    )
    write_labelled_result(
        "service_status",
        args.label,
        {
            "tasks": args.tasks,
            "services": args.services,
            "wall_ms": [round(w * 1000, 1) for w in walls],
            "longest_stall_ms": [round(s * 1000, 1) for s in stalls],
            "median_wall_ms": round(statistics.median(walls) * 1000, 1),
            "median_longest_stall_ms": round(statistics.median(stalls) * 1000, 1),
            "running_tasks_listed": running,
            "first_wall_ms": round(first_wall * 1000, 1),
            "first_longest_stall_ms": round(first_stall * 1000, 1),
            "churn_task_changes": args.churn,
            "churn_ms": [round(c * 1000, 1) for c in kept],
            "churn_ms_no_counts_kept": [round(c * 1000, 1) for c in not_kept],
        },
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
