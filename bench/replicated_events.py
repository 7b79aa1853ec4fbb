"""What the replicated orchestrator's event handling costs while a leader starts 100,000 tasks
(issue 15: a profile of the leader showed 1.5 s under ``ReplicatedOrchestrator.handle`` ->
``store.view``): is it work, or CPython's cyclic collector, whose collections are charged to
whatever code allocates when one is due?

In process: a replicated orchestrator (with its own restart and update supervisors) on a store
with --nodes ready nodes; --services services of --tasks/--services replicas are created, the
orchestrator creates their tasks, then each task is moved as the scheduler and an agent would
(assigned to a node, starting, running), 200 per store update. Every call of ``handle`` is
timed, and every collection: the part of the collections that fell inside ``handle`` is the
collector's, the rest of ``handle``'s time is its work.

Prints a table and writes bench/results/replicated_events[-LABEL].json.
Run: .venv/bin/python bench/replicated_events.py [--tasks 100000 --services 100 --nodes 1000]
     [--gc default,tuned,off] [--label L]
Before/after: PYTHONPATH=<an older src> .venv/bin/python bench/replicated_events.py --label before
"""

import argparse
import asyncio
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shoal.api.objects import Service, Task
from shoal.api.specs import ContainerSpec, ReplicatedService, ServiceMode, ServiceSpec, TaskSpec
from shoal.api.types import TaskState
from shoal.clock import SystemClock
from shoal.manager.orchestrator.replicated import ReplicatedOrchestrator
from shoal.store import Event, MemoryStore, Tx

sys.path.insert(0, str(Path(__file__).parent))
from gc_mode import gc_mode
from result_file import write_labelled_result
from store_fill import ready_node

PER_UPDATE = 200


class Meter:
    """Time inside ``handle`` and time of every collection, split by whether ``handle`` was
    running when the collection happened."""

    def __init__(self) -> None:
        self.calls = 0
        self.handle_seconds = 0.0
        self.handle_cpu_seconds = 0.0  # the process's CPU time: the machine may be busy
        self.in_handle = False
        self.gc_seconds = 0.0
        self.gc_in_handle_seconds = 0.0
        self.full = 0
        self.full_in_handle = 0
        self._gc_started = 0.0

    def wrap(self, handle: Callable[[Event], None]) -> Callable[[Event], None]:
        def timed(ev: Event) -> None:
            self.calls += 1
            self.in_handle = True
            started, cpu = time.perf_counter(), time.process_time()
            try:
                handle(ev)
            finally:
                self.handle_seconds += time.perf_counter() - started
                self.handle_cpu_seconds += time.process_time() - cpu
                self.in_handle = False

        return timed

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        spent = time.perf_counter() - self._gc_started
        full = info["generation"] == 2
        self.gc_seconds += spent
        self.full += full
        if self.in_handle:
            self.gc_in_handle_seconds += spent
            self.full_in_handle += full


def make_service(i: int, replicas: int) -> Service:
    return Service(
        ID=f"svc{i:04d}",
        Spec=ServiceSpec(
            Name=f"svc{i}",
            TaskTemplate=TaskSpec(ContainerSpec=ContainerSpec(Image="img:1"), Runtime="process"),
            Mode=ServiceMode(Replicated=ReplicatedService(Replicas=replicas)),
        ),
    )


async def one_pass(args: argparse.Namespace, mode: str) -> dict[str, Any]:
    meter = Meter()
    with gc_mode(mode):
        gc.callbacks.append(meter.on_gc)
        store = MemoryStore(clock=SystemClock())
        orchestrator = ReplicatedOrchestrator(store, store.clock)
        orchestrator.handle = meter.wrap(orchestrator.handle)  # type: ignore[method-assign,assignment]
        running = asyncio.create_task(orchestrator.run())
        started = time.perf_counter()
        try:

            def add(tx: Tx, objs: list[Any]) -> None:
                for o in objs:
                    tx.create(o)

            nodes = [ready_node(i) for i in range(args.nodes)]
            for first in range(0, len(nodes), PER_UPDATE):
                await store.update(
                    lambda tx, first=first: add(tx, nodes[first : first + PER_UPDATE])
                )
            per_service = args.tasks // args.services
            for i in range(args.services):
                await store.update(lambda tx, i=i: add(tx, [make_service(i, per_service)]))
            # Polled: the orchestrator creates the tasks in its own time, and says nothing when done.
            while store.view().count(Task) < per_service * args.services:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            created = time.perf_counter() - started

            def move(tx: Tx, ids: list[str], state: TaskState) -> None:
                for n, task_id in enumerate(ids):
                    t = tx.get(Task, task_id)
                    if t is None:
                        continue
                    t = t.clone()
                    if state == TaskState.ASSIGNED:
                        t.NodeID = nodes[n % len(nodes)].ID
                    t.Status.State = state
                    tx.update(t)

            ids = [t.ID for t in store.view().list(Task)]
            for state in (TaskState.ASSIGNED, TaskState.STARTING, TaskState.RUNNING):
                for first in range(0, len(ids), PER_UPDATE):
                    chunk = ids[first : first + PER_UPDATE]
                    await store.update(lambda tx, chunk=chunk, state=state: move(tx, chunk, state))
            await asyncio.sleep(0.2)  # the last events handled
            wall = time.perf_counter() - started
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            gc.callbacks.remove(meter.on_gc)
            store.close()
    return {
        "gc": mode,
        "wall_s": round(wall, 2),
        "tasks_created_s": round(created, 2),
        "handle_calls": meter.calls,
        "handle_ms": round(meter.handle_seconds * 1000, 1),
        "handle_cpu_ms": round(meter.handle_cpu_seconds * 1000, 1),
        "gc_in_handle_ms": round(meter.gc_in_handle_seconds * 1000, 1),
        "handle_work_ms": round((meter.handle_seconds - meter.gc_in_handle_seconds) * 1000, 1),
        "handle_work_us_per_call": round(
            (meter.handle_seconds - meter.gc_in_handle_seconds) / max(1, meter.calls) * 1e6, 2
        ),
        "full_collections_in_handle": meter.full_in_handle,
        "full_collections": meter.full,
        "gc_ms": round(meter.gc_seconds * 1000, 1),
    }


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--services", type=int, default=100)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--gc", default="default,tuned,off")
    ap.add_argument("--label", default="")
    args = ap.parse_args()

    runs = []
    for mode in args.gc.split(","):
        row = await one_pass(args, mode)
        runs.append(row)
        print(
            f"gc {mode:<8} wall {row['wall_s']:>6} s  handle: {row['handle_calls']} calls "
            f"{row['handle_ms']:>8} ms, of which collections {row['gc_in_handle_ms']:>8} ms "
            f"({row['full_collections_in_handle']} full), work {row['handle_work_ms']:>7} ms "
            f"({row['handle_work_us_per_call']} us/call; cpu {row['handle_cpu_ms']} ms); "
            f"all collections {row['gc_ms']} ms "
            f"({row['full_collections']} full)"
        )
    write_labelled_result(
        "replicated_events",
        args.label,
        {"tasks": args.tasks, "services": args.services, "nodes": args.nodes, "runs": runs},
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
