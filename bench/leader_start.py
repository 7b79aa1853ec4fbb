"""How long a newly elected leader's orchestration loops, allocator and scheduler hold its event
loop on a large store (issue 15): each one's first read of the store (``init``, the restart
supervisor's ``_recover``, the scheduler's ``_load``, the allocator's list of new tasks) and
then, for the orchestration loops, the first ``tick``, with a probe task measuring the longest
stretch the loop ran nothing else (a first read done in one go, as before it was sliced,
counts whole).
Nothing needs doing in the store (every task running on a ready node), so the figures are the
cost of looking, as after a leader change in a settled cluster.

CPython's cyclic collector walks the whole store (about 3 million objects at 100,000 tasks,
1-2 s here) whenever allocations trigger a full collection: each pass says how many full
collections fell in each component's part and how long all collections took there; the pass
``off`` has the collector disabled around the timed parts, the cost of the work alone.

Prints a table and writes bench/results/leader_start[-LABEL].json.
Run: .venv/bin/python bench/leader_start.py [--tasks 100000 --services 100 --nodes 1000]
     [--gc default,tuned,off] [--label L]
Before/after: PYTHONPATH=<an older src> .venv/bin/python bench/leader_start.py --label before
"""

import argparse
import asyncio
import gc
import inspect
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from shoal.api.objects import Task
from shoal.api.types import TaskState
from shoal.manager.allocator import Allocator
from shoal.manager.orchestrator.components import orchestration_components
from shoal.manager.orchestrator.reconcile_loop import ReconcileLoop
from shoal.manager.orchestrator.restart import RestartSupervisor
from shoal.manager.orchestrator.service_orchestrator import ServiceOrchestrator
from shoal.manager.orchestrator.updater import UpdateSupervisor
from shoal.manager.scheduler import Scheduler
from shoal.store import MemoryStore, ReadTx, Tx

sys.path.insert(0, str(Path(__file__).parent))
from gc_mode import gc_mode
from result_file import write_labelled_result
from service_status import build
from store_fill import ready_node


class GcWatch:
    """Collections of the oldest generation (which walk the whole store) and the time every
    collection took, while installed."""

    def __init__(self) -> None:
        self.full = 0
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.full += info["generation"] == 2


class Turns:
    """What a piece of work did to the event loop: its wall time, the longest stretch the loop
    ran nothing else (the probe task's turns are that far apart), and the most CPU time this
    process spent in one such stretch. On a busy machine the wall stretch also counts the time
    the process waited for a core; the CPU figure does not (LoopTurns cuts slices by wall time,
    so a slice does less work on a busy machine, not more)."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.longest = 0.0
        self.longest_cpu = 0.0

    async def measure(self, work: Awaitable[Any]) -> None:
        done = False

        async def probe() -> None:
            last, last_cpu = time.perf_counter(), time.process_time()
            while not done:
                await asyncio.sleep(0)
                now, cpu = time.perf_counter(), time.process_time()
                self.longest = max(self.longest, now - last)
                self.longest_cpu = max(self.longest_cpu, cpu - last_cpu)
                last, last_cpu = now, cpu

        prober = asyncio.ensure_future(probe())
        await asyncio.sleep(0)
        started = time.perf_counter()
        await work
        self.wall += time.perf_counter() - started
        done = True
        await prober

    def add_blocking(self, wall: float, cpu: float) -> None:
        """Work done in one go (the code before it was sliced): one stretch, all of it."""
        self.wall += wall
        self.longest = max(self.longest, wall)
        self.longest_cpu = max(self.longest_cpu, cpu)


def first_read(component: Any, view: ReadTx) -> Any:
    """Start the component's first read of the store: a coroutine if it is done in steps, else
    it is done when this returns (the code before it was sliced)."""
    if isinstance(component, RestartSupervisor):
        return component._recover(view)
    if isinstance(component, ReconcileLoop):
        return component.init(view)
    if isinstance(component, Scheduler):
        return component._load(view)
    if isinstance(component, Allocator):
        new_tasks = getattr(component, "_new_tasks", None)
        if new_tasks is not None:
            return new_tasks(view.list(Task))
        # Before it was sliced, Allocator.run read this in one go:
        return {t.ID: None for t in view.list(Task) if t.Status.State == TaskState.NEW}
    raise TypeError(component)


async def first_tick(component: ReconcileLoop) -> None:
    """The component's first tick and the work it started: the rolling updates an
    orchestrator hands every service to (which find nothing to update here), so that they
    count here and not in the next component's figures."""
    await component.tick()
    if isinstance(component, ServiceOrchestrator):
        started = [task for _, task in component.updates._updates.values()]
        await asyncio.gather(*started, return_exceptions=True)


async def measure(store: MemoryStore, mode: str) -> list[dict[str, Any]]:
    """Each orchestration component's start on ``store``: its first read (``init``, or the
    restart supervisor's recovery) and its first tick."""
    rows = []
    with gc_mode(mode):
        components: list[Any] = [
            *orchestration_components(store, store.clock),
            Allocator(store, store.clock),
            Scheduler(store, store.clock),
        ]
        for component in components:
            name = type(component).__name__
            if isinstance(component, UpdateSupervisor):
                continue  # reads nothing until an orchestrator hands it a service
            watch = GcWatch()
            gc.callbacks.append(watch)
            init, tick = Turns(), Turns()
            try:
                started, cpu = time.perf_counter(), time.process_time()
                step = first_read(component, store.view())
                init.add_blocking(time.perf_counter() - started, time.process_time() - cpu)
                if inspect.isawaitable(step):
                    await init.measure(step)
                if isinstance(component, ReconcileLoop):
                    await tick.measure(first_tick(component))
                if isinstance(component, RestartSupervisor):
                    component.cancel_all()
            finally:
                gc.callbacks.remove(watch)
            rows.append(
                {
                    "component": name,
                    "init_wall_ms": round(init.wall * 1000, 1),
                    "init_longest_stall_ms": round(init.longest * 1000, 1),
                    "init_longest_stall_cpu_ms": round(init.longest_cpu * 1000, 1),
                    "first_tick_wall_ms": round(tick.wall * 1000, 1),
                    "first_tick_longest_stall_ms": round(tick.longest * 1000, 1),
                    "first_tick_longest_stall_cpu_ms": round(tick.longest_cpu * 1000, 1),
                    "full_collections": watch.full,
                    "gc_ms": round(watch.seconds * 1000, 1),
                }
            )
    return rows


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=25_000)
    ap.add_argument("--services", type=int, default=25)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--label", default="")
    ap.add_argument(
        "--gc",
        default="default,off",
        help="comma-separated passes: default (Python's collector settings), tuned "
        "(shoal.store.gc_tuning, as the daemon), off (gc.disable() around the timed parts)",
    )
    args = ap.parse_args()

    t0 = time.perf_counter()
    control = await build(args.tasks, args.services)
    store = control.store

    def add_nodes(tx: Tx, first: int) -> None:
        for i in range(first, min(first + 200, args.nodes)):
            tx.create(ready_node(i))

    for first in range(0, args.nodes, 200):
        await store.update(lambda tx, first=first: add_nodes(tx, first))  # type: ignore[misc]
    print(f"store: {args.tasks} tasks in {time.perf_counter() - t0:.1f} s")

    runs = []
    for mode in args.gc.split(","):
        rows = await measure(store, mode)
        runs.append({"gc": mode, "components": rows})
        print(f"gc {mode}:")
        print(
            f"{'component':<24} {'init wall':>9} {'stall':>6} {'(cpu)':>6} "
            f"{'tick wall':>9} {'stall':>6} {'(cpu)':>6} {'full gcs':>8} {'gc ms':>7}"
        )
        for r in rows:
            print(
                f"{r['component']:<24} {r['init_wall_ms']:>9} {r['init_longest_stall_ms']:>6} "
                f"{r['init_longest_stall_cpu_ms']:>6} {r['first_tick_wall_ms']:>9} "
                f"{r['first_tick_longest_stall_ms']:>6} {r['first_tick_longest_stall_cpu_ms']:>6} "
                f"{r['full_collections']:>8} {r['gc_ms']:>7}"
            )
    write_labelled_result(
        "leader_start",
        args.label,
        {
            "tasks": args.tasks,
            "services": args.services,
            "nodes": args.nodes,
            "runs": runs,
        },
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
