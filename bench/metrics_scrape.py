"""What a Prometheus scrape of a manager costs, and what keeping its counts costs the store.

For a store of N tasks (on 1,000 nodes):
- first: the first scrape of a manager, which reads the tables once to start counting;
- scrape: a scrape with nothing changed since the last (the node's whole registry rendered
  to text: instruments, the manager's counts, node info);
- catch-up: a scrape after 1,000 task state changes it had not yet counted;
- walk: for comparison, walking every task to count them by state, which a scrape never does;
- apply: what each task event costs when the counts follow the watch: CPU time of the
  store applying 10,000 task state changes (as every manager does for each committed
  entry), with and without counting (catching up included); the difference per event.

Times are CPU seconds of this process (the machine may be shared).

Prints a table and writes bench/results/metrics_scrape.json.
Run: .venv/bin/python bench/metrics_scrape.py [--quick]
"""

import argparse
import asyncio
import platform
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from shoal.api.ids import new_id
from shoal.api.objects import Node, NodeStatus, Task, TaskStatus
from shoal.api.specs import NodeSpec
from shoal.api.types import NodeState, TaskState
from shoal.daemon.metrics import NodeCollector
from shoal.manager.metrics import ClusterCounts, ManagerCollector
from shoal.metrics import INSTRUMENTS
from shoal.store import Action, Change, MemoryStore, Proposal, Tx

sys.path.insert(0, str(Path(__file__).parent))
from result_file import write_result

RESULTS = Path(__file__).parent / "results" / "metrics_scrape.json"
NODES = 1_000
CHANGES = 1_000
APPLY_CHANGES = 10_000


async def filled_store(n: int) -> tuple[MemoryStore, list[str]]:
    store = MemoryStore()
    nodes = [
        Node(ID=new_id(), Spec=NodeSpec(), Status=NodeStatus(State=NodeState.READY))
        for _ in range(NODES)
    ]
    tasks = [
        Task(
            ID=new_id(),
            ServiceID=f"s{i % 50}",
            NodeID=nodes[i % NODES].ID,
            DesiredState=TaskState.RUNNING,
            Status=TaskStatus(State=TaskState.RUNNING),
        )
        for i in range(n)
    ]
    await store.batch([lambda tx, o=o: tx.create(o) for o in (*nodes, *tasks)])
    return store, [t.ID for t in tasks]


def flip(task_ids: list[str], start: int, count: int) -> list:
    """``count`` task state changes (running <-> starting), as statuses coming in."""

    def change(task_id: str):
        def fn(tx: Tx) -> None:
            current = tx.get(Task, task_id)
            assert current is not None
            changed = current.clone()
            state = (
                TaskState.STARTING
                if current.Status.State == TaskState.RUNNING
                else TaskState.RUNNING
            )
            changed.Status = TaskStatus(State=state)
            tx.update(changed)

        return fn

    return [change(task_ids[(start + i) % len(task_ids)]) for i in range(count)]


def registry_of(store: MemoryStore) -> CollectorRegistry:
    manager = SimpleNamespace(
        store=store, is_leader=True, replica=SimpleNamespace(node=None), servicers=[]
    )
    state = SimpleNamespace(Role="manager", ClusterID="c", NodeID="n")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(INSTRUMENTS)
    registry.register(ManagerCollector(lambda: manager))  # type: ignore[arg-type, return-value]
    registry.register(NodeCollector(SimpleNamespace(state=state)))  # type: ignore[arg-type]
    return registry


def timed(fn) -> float:
    """CPU seconds ``fn`` takes (the machine may be shared: wall time would count others)."""
    started = time.process_time()
    fn()
    return time.process_time() - started


async def case(n: int, repeat: int) -> dict:
    store, task_ids = await filled_store(n)
    registry = registry_of(store)
    first = timed(lambda: generate_latest(registry))
    scrapes = [timed(lambda: generate_latest(registry)) for _ in range(repeat * 10)]
    catch_ups = []
    for r in range(repeat):
        await store.batch(flip(task_ids, r * CHANGES, CHANGES))
        catch_ups.append(timed(lambda: generate_latest(registry)))
    walks = [
        timed(lambda: Counter(t.Status.State for t in store.view().list(Task)))
        for _ in range(repeat)
    ]
    size = len(generate_latest(registry))
    store.close()
    return {
        "tasks": n,
        "first_scrape_ms": first * 1000,
        "scrape_ms": statistics.median(scrapes) * 1000,
        "catch_up_1000_changes_ms": statistics.median(catch_ups) * 1000,
        "walk_all_tasks_ms": statistics.median(walks) * 1000,
        "exposition_bytes": size,
    }


def proposals(store: MemoryStore, task_ids: list[str], count: int) -> list[Proposal]:
    """``count`` task state changes in proposals of 200, built ahead of time."""
    out = []
    version = store.version
    view = store.view()
    for lo in range(0, count, 200):
        version += 1
        changes = []
        for task_id in task_ids[lo : lo + 200]:
            task = view.get(Task, task_id)
            assert task is not None
            changed = task.clone()
            changed.Status = TaskStatus(State=TaskState.STARTING)
            changes.append(Change(Action.UPDATE, changed))
        out.append(Proposal(version, changes))
    return out


async def apply_cost(repeat: int) -> dict:
    """CPU seconds for the store to apply APPLY_CHANGES task state changes (the part of the
    write path every manager runs), without and with the counts following, the counts'
    catching up included."""
    results: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(repeat):
        for mode in ("without", "with"):
            store, task_ids = await filled_store(APPLY_CHANGES)
            registry = registry_of(store)
            if mode == "with":
                generate_latest(registry)  # the first scrape starts the counting
            todo = proposals(store, task_ids, APPLY_CHANGES)
            started = time.process_time()
            for proposal in todo:
                store.apply(proposal)
            if mode == "with":
                registry_manager_counts(registry).refresh()
            results[mode].append(time.process_time() - started)
            store.close()
    without = statistics.median(results["without"])
    with_counts = statistics.median(results["with"])
    return {
        "changes": APPLY_CHANGES,
        "without_cpu_seconds": without,
        "with_cpu_seconds": with_counts,
        "per_event_us": (with_counts - without) / APPLY_CHANGES * 1e6,
    }


def registry_manager_counts(registry: CollectorRegistry) -> ClusterCounts:
    collector = next(c for c in registry._collector_to_names if isinstance(c, ManagerCollector))
    assert collector.counts is not None
    return collector.counts


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only 10k tasks")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (median)")
    args = parser.parse_args()
    sizes = [10_000] if args.quick else [1_000, 10_000, 100_000]
    rows = []
    print(f"{'tasks':>7} {'first ms':>9} {'scrape ms':>10} {'catch-up ms':>12} {'walk ms':>8}")
    for n in sizes:
        row = await case(n, args.repeat)
        rows.append(row)
        print(
            f"{n:>7} {row['first_scrape_ms']:>9.1f} {row['scrape_ms']:>10.2f} "
            f"{row['catch_up_1000_changes_ms']:>12.2f} {row['walk_all_tasks_ms']:>8.1f}"
        )
    apply = await apply_cost(args.repeat)
    print(
        f"store apply: {apply['changes']} task state changes in "
        f"{apply['without_cpu_seconds']:.3f} s CPU without counting, "
        f"{apply['with_cpu_seconds']:.3f} s with ({apply['per_event_us']:.1f} us per event)"
    )
    write_result(
        RESULTS,
        {
            "benchmark": "metrics_scrape",
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "nodes": NODES,
            "repeat": args.repeat,
            "results": rows,
            "write_path": apply,
        },
    )


if __name__ == "__main__":
    asyncio.run(main())
