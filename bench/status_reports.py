"""A new leader's status flush when every agent reports again: after a leader change each
agent opens a session with the new leader and reports the status of every task it has, most
of them exactly as the store already has them. How long does writing them hold the event
loop (every other coroutine, raft's heartbeats too, waits meanwhile)?

The store is filled as a settled cluster's (store_fill), the dispatcher is handed every
task's status as its agent would report it (the store's own, so nothing changes), and its
flush runs while a ticker coroutine measures the longest time the loop was held.

Run: .venv/bin/python bench/status_reports.py [--tasks 100000 --nodes 1000] [--label NAME]
"""

import argparse
import asyncio
import datetime as dt
import time

from gc_mode import gc_mode
from result_file import write_labelled_result
from store_fill import make_nodes, make_service, move_tasks_to_running

from shoal.api.objects import Task
from shoal.clock import SystemClock
from shoal.manager.dispatcher.dispatcher import Dispatcher
from shoal.manager.orchestrator.task import new_task
from shoal.store import MemoryStore


async def fill(store: MemoryStore, tasks: int, nodes: int, services: int) -> None:
    node_objs = make_nodes(nodes)
    svcs = [make_service(i, tasks // services) for i in range(services)]
    now = dt.datetime.now(dt.UTC)

    def create(tx):  # type: ignore[no-untyped-def]
        for n in node_objs:
            tx.create(n)
        for s in svcs:
            tx.create(s)

    await store.update(create)
    await store.batch(
        (lambda tx, s=s, k=k: tx.create(new_task(s, now=now, slot=k + 1)))
        for s in svcs
        for k in range(tasks // services)
    )
    await move_tasks_to_running(store, [n.ID for n in node_objs], now)


async def longest_hold(work) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Run ``work`` while a ticker records the loop's longest gap; (longest gap, total)."""
    gaps: list[float] = []
    done = False

    async def ticker() -> None:
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    t = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)
    start = time.perf_counter()
    await work
    total = time.perf_counter() - start
    done = True
    await t
    return max(gaps), total


async def main_async(args: argparse.Namespace) -> dict[str, float]:
    store = MemoryStore()
    await fill(store, args.tasks, args.nodes, args.services)
    dispatcher = Dispatcher(store, SystemClock())
    # Each agent's report, as the dispatcher keeps it: the status the store already has.
    for t in store.view().list(Task):
        assert t.NodeID is not None
        dispatcher._statuses[t.ID] = (t.NodeID, t.Status.model_copy())
    version = store.version
    with gc_mode("off"):
        hold, total = await longest_hold(dispatcher._flush_statuses())
    assert store.version == version, "the flush changed the store"
    return {"longest_loop_hold_seconds": round(hold, 4), "flush_seconds": round(total, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--services", type=int, default=100)
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    figures = asyncio.run(main_async(args))
    print(
        f"{args.tasks} statuses reported again as the store has them: the flush took "
        f"{figures['flush_seconds']} s and held the loop {figures['longest_loop_hold_seconds']} s "
        "at most"
    )
    write_labelled_result(
        "status_reports", args.label, {"tasks": args.tasks, "nodes": args.nodes, **figures}
    )


if __name__ == "__main__":
    main()
