"""Where a manager's memory goes with many tasks: the store's objects, by sub-object, and the
raft log kept in memory, in process.

Tasks are made as the orchestrator makes them (``new_task``, ``store.batch``, proposals of up
to 200 changes), then each moved to running on one of 1,000 nodes in a second batch, as the
scheduler and the dispatcher would. The store is built twice, in fresh processes:

- ``leader``: the store keeps the writers' objects, as the raft leader applies its own
  proposals (``ReplicatedLog.apply``: with their field-name sets shared);
- ``follower``: every proposal is encoded and decoded, as a follower (or a restarted manager)
  applies the log.

For each: RSS added per task (from /proc, with the collector run), what tracemalloc counts
per task (and its biggest lines), the objects the collector tracks per task, and the bytes per
task reachable from each of a Task's fields, every object counted once over the whole store
(what a field costs the store, sharing included).

Then the raft log: one manager (``Replica``, as store_scale.py, with raft's default
settings) builds ``--log-tasks`` tasks the same way: the most bytes of log entries it held in
memory (each entry one proposal's encoded changes), what it holds at the end, and its last
snapshot (also held in memory). A manager holds its log's entries from one snapshot to the
next, and some behind it for slow followers (``RaftConfig``).

Writes bench/results/memory.json.
Run: .venv/bin/python bench/memory.py [--tasks N] [--services S] [--out NAME]
"""

import argparse
import asyncio
import datetime as dt
import gc
import json
import platform
import subprocess
import sys
import tempfile
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).parent))
from result_file import write_result
from store_fill import make_nodes, make_service, move_tasks_to_running
from store_scale import replica, rss_mib

from shoal.api.base import share_field_sets
from shoal.api.objects import Task
from shoal.manager.dispatcher.assignments import NodeAssignments
from shoal.manager.orchestrator.task import new_task
from shoal.raft.types import RaftConfig
from shoal.store import MemoryStore
from shoal.store.proposal import Action, Proposal, decode_proposal, encode_proposal

RESULTS = Path(__file__).parent / "results"
NODES = 1_000


class LeaderProposer:
    """Applies the writer's objects, their field sets shared, as ``ReplicatedLog.apply``
    does with the leader's own proposals."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    async def propose(self, proposal: Proposal) -> None:
        for change in proposal.changes:
            if change.action is not Action.REMOVE:
                share_field_sets(change.obj)
        self.store.apply(proposal)


class FollowerProposer:
    """Applies each proposal decoded from its encoding, as a follower does."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    async def propose(self, proposal: Proposal) -> None:
        self.store.apply(decode_proposal(encode_proposal(proposal)))


async def fill(store: MemoryStore, tasks: int, services: int) -> None:
    """Nodes and services, then ``tasks`` new tasks, then each moved to running."""
    nodes = make_nodes(NODES)
    svcs = [make_service(i, tasks // services) for i in range(services)]
    await store.batch([(lambda tx, o=o: tx.create(o)) for o in [*nodes, *svcs]])
    node_ids = [n.ID for n in nodes]
    del nodes
    now = dt.datetime.now(dt.UTC)
    for svc in svcs:
        made = (new_task(svc, now=now, slot=k + 1) for k in range(tasks // services))
        await store.batch((lambda tx, t=t: tx.create(t)) for t in made)

    await move_tasks_to_running(store, node_ids, now)


def _walk(obj: Any, seen: set[int]) -> int:
    """Bytes of ``obj`` and what it holds that ``seen`` does not have yet (then it has)."""
    total = 0
    stack = [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
        if isinstance(o, BaseModel):
            stack.append(o.__dict__)
            stack.append(o.__pydantic_fields_set__)
            if o.__pydantic_extra__ is not None:
                stack.append(o.__pydantic_extra__)
        elif isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, list | tuple | set | frozenset):
            stack.extend(o)
    return total


def by_field(tasks: list[Task]) -> dict[str, float]:
    """Bytes per task reachable from each field of a Task, every object counted once over
    all of them; ``<task>``: the Task object, its __dict__ and its field set. Interned
    strings and small ints shared with the rest of the process are counted at first sight."""
    seen: set[int] = set()
    n = len(tasks)
    out: dict[str, float] = {"<task>": 0.0}
    for t in tasks:
        for part in (t, t.__dict__, t.__pydantic_fields_set__):
            if id(part) not in seen:
                seen.add(id(part))
                out["<task>"] += sys.getsizeof(part)
    for name in Task.model_fields:
        out[name] = sum(_walk(t.__dict__.get(name), seen) for t in tasks) / n
    out["<task>"] /= n
    return {k: round(v, 1) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


async def measure_store(path: str, tasks: int, services: int, trace: bool) -> dict[str, Any]:
    gc.disable()  # collections at our moments only: the figures are then repeatable
    store = MemoryStore()
    store.proposer = (LeaderProposer if path == "leader" else FollowerProposer)(store)
    gc.collect()
    objects0 = len(gc.get_objects())
    rss0 = rss_mib()
    if trace:
        tracemalloc.start(1)
    await fill(store, tasks, services)
    gc.collect()
    result: dict[str, Any] = {
        "rss_bytes_per_task": round((rss_mib() - rss0) * 2**20 / tasks),
        "gc_objects_per_task": round((len(gc.get_objects()) - objects0) / tasks, 2),
    }
    if trace:
        snap = tracemalloc.take_snapshot()
        tracemalloc.stop()
        stats = snap.statistics("lineno")
        result["tracemalloc_bytes_per_task"] = round(sum(s.size for s in stats) / tasks)
        result["tracemalloc_top_lines"] = [
            {"line": str(s.traceback[0]), "bytes_per_task": round(s.size / tasks)}
            for s in stats[:12]
        ]
    counts = Counter(type(o).__name__ for o in gc.get_objects())
    result["gc_objects_by_type_per_task"] = {
        k: round(v / tasks, 2) for k, v in counts.most_common(12) if v >= tasks // 10
    }
    result["bytes_per_task_by_field"] = by_field(store.view().list(Task))
    return result


async def measure_log(tasks: int, services: int, config: RaftConfig) -> dict[str, Any]:
    """The raft log one manager holds in memory while it builds the store: the most bytes of
    entries held (sampled every 50 ms), what it holds at the end, the snapshots taken."""
    with tempfile.TemporaryDirectory(prefix="shoal-memory-") as d:
        r, store = replica(Path(d), config)
        await r.bootstrap()
        assert r.node is not None and r.node.core is not None
        log = r.node.core.log
        most = 0

        async def sample() -> None:
            nonlocal most
            while True:
                most = max(most, sum(len(e.data) for e in log.entries))
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        await fill(store, tasks, services)
        sampler.cancel()
        held = sum(len(e.data) for e in log.entries)
        result = {
            "entries_written": log.applied,
            "entries_held": len(log.entries),
            "bytes_held": held,
            "most_bytes_held": max(most, held),
            "snapshot_index": log.snapshot.index if log.snapshot else 0,
            "snapshot_bytes": len(log.snapshot.data) if log.snapshot else 0,
            "snapshot_interval": config.snapshot_interval,
            "snapshot_bytes_floor": config.snapshot_bytes,
            "keep_entries": config.keep_entries,
            "keep_bytes": config.keep_bytes,
        }
        await r.stop()
        store.close()
    return result


async def measure_sessions(tasks: int, services: int) -> dict[str, Any]:
    """What the leader's dispatcher sessions hold (``NodeAssignments``, one per node) beyond
    the store: each node is sent its tasks (``complete``), then every task's status moves on
    once more (the agents' reports, as from ASSIGNED to RUNNING) and each session is given
    those events. Bytes reachable from the sessions and not from the store's tasks."""
    gc.disable()
    store = MemoryStore()
    store.proposer = LeaderProposer(store)
    await fill(store, tasks, services)
    view = store.view()
    sessions = [NodeAssignments(n.ID) for n in view.nodes()]
    for session in sessions:
        session.complete(view)
    by_node: dict[str, list] = {s.node_id: [] for s in sessions}

    def sort(evs: list) -> None:
        for ev in evs:
            if isinstance(ev.obj, Task) and ev.obj.NodeID in by_node:
                by_node[ev.obj.NodeID].append(ev)

    _, listening = store.view_and_listen(sort)
    now = dt.datetime.now(dt.UTC)

    def reported(task_id: str):  # type: ignore[no-untyped-def]
        def fn(tx) -> None:  # type: ignore[no-untyped-def]
            t = tx.get(Task, task_id).model_copy()
            t.Status = t.Status.model_copy(update={"Message": "reported", "Timestamp": now})
            tx.update(t)

        return fn

    await store.batch(reported(t.ID) for t in view.list(Task))
    listening.close()
    view = store.view()
    for session in sessions:
        session.incremental(by_node[session.node_id], view)
    by_node.clear()
    seen: set[int] = set()
    for t in view.list(Task):
        _walk(t, seen)
    held = sum(_walk(s.sent, seen) for s in sessions)
    return {"sessions": len(sessions), "bytes_per_task": round(held / tasks)}


def in_child(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument(
        "--log-tasks", type=int, default=100_000, help="tasks for the raft log's figures"
    )
    parser.add_argument("--no-trace", action="store_true", help="skip tracemalloc (faster)")
    parser.add_argument("--out", default="memory", help="results file name (without .json)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = ["--tasks", str(args.tasks), "--services", str(args.services)]
    if args.child == "log":
        print(json.dumps(await measure_log(args.tasks, args.services, RaftConfig())))
        return
    if args.child == "sessions":
        print(json.dumps(await measure_sessions(args.tasks, args.services)))
        return
    if args.child:
        print(json.dumps(await measure_store(args.child, args.tasks, args.services, False)))
        return

    result: dict[str, Any] = {
        "benchmark": "memory",
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "tasks": args.tasks,
        "services": args.services,
        "nodes": NODES,
    }
    for path in ("leader", "follower"):
        store = in_child("--child", path, *sizes)
        if not args.no_trace:
            traced = await measure_store(path, args.tasks, args.services, True)
            store["tracemalloc_bytes_per_task"] = traced["tracemalloc_bytes_per_task"]
            store["tracemalloc_top_lines"] = traced["tracemalloc_top_lines"]
            gc.enable()
            gc.collect()
        result[f"store_{path}"] = store
        fields = ", ".join(
            f"{k} {v:.0f}" for k, v in store["bytes_per_task_by_field"].items() if v >= 50
        )
        print(
            f"store ({path}): RSS {store['rss_bytes_per_task']} B/task "
            f"(x 100,000 = {store['rss_bytes_per_task'] * 100_000 / 2**20:.0f} MiB), "
            f"{store['gc_objects_per_task']} tracked objects/task; by field (B/task): {fields}",
            flush=True,
        )
        for line in store.get("tracemalloc_top_lines", [])[:6]:
            print(f"    {line['bytes_per_task']:6d} B/task  {line['line']}")
    sessions = in_child("--child", "sessions", *sizes)
    result["dispatcher_sessions"] = sessions
    print(
        f"dispatcher sessions ({sessions['sessions']} nodes, every task sent, then its status "
        f"reported once more): {sessions['bytes_per_task']} B/task held beyond the store",
        flush=True,
    )
    log_sizes = ["--tasks", str(args.log_tasks), "--services", str(args.services)]
    log = in_child("--child", "log", *log_sizes)
    result["raft_log"] = {"tasks": args.log_tasks, **log}
    print(
        f"raft log ({args.log_tasks} tasks created then running, default RaftConfig): "
        f"{log['entries_written']} entries written; held in memory at most "
        f"{log['most_bytes_held'] / 2**20:.1f} MiB, at the end {log['entries_held']} entries "
        f"of {log['bytes_held'] / 2**20:.1f} MiB; last snapshot at {log['snapshot_index']} "
        f"({log['snapshot_bytes'] / 2**20:.1f} MiB, also held in memory)",
        flush=True,
    )
    write_result(RESULTS / f"{args.out}.json", result)


if __name__ == "__main__":
    asyncio.run(main())
