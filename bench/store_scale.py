"""A manager's store at scale through the real raft path, in process: build it, snapshot it,
restart from disk.

One manager (a ``Replica``: raft node, encrypted SQLite log, the store's replicated log, as
``swarm init`` makes it) is given 1,000 ready nodes, 100 services and 100,000 tasks: the tasks
written new, as the orchestrator writes them (``store.batch``, proposals of up to 200
changes), then each moved to running on its node in a second batch, as the scheduler and the
dispatcher would. Reported:

- build: seconds and tasks per second, raft entries and storage writes (Readies) with the
  entries each carried (batching), log bytes per task on disk, and the process's RSS;
- restart from the log alone (a fresh process: load the log, replay every entry), seconds and
  RSS; then a snapshot taken there (``RaftNode.snapshot_now``): seconds and bytes;
- restart from the snapshot (a fresh process): seconds and RSS.

Writes bench/results/store_scale.json.
Run: .venv/bin/python bench/store_scale.py [--tasks N] [--nodes M] [--services S] [--dir D]
"""

import argparse
import asyncio
import datetime as dt
import gc
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shoal.api.objects import Task
from shoal.clock import SystemClock
from shoal.manager.consensus.replica import Replica
from shoal.manager.orchestrator.task import new_task
from shoal.raft.storage import SQLiteStorage
from shoal.raft.types import RaftConfig
from shoal.rpc import Transport
from shoal.store import MemoryStore
from shoal.store.gc_tuning import tune_gc

sys.path.insert(0, str(Path(__file__).parent))
from result_file import write_result
from store_fill import make_nodes, make_service, move_tasks_to_running

RESULTS = Path(__file__).parent / "results" / "store_scale.json"
# No snapshot while building: the first restart replays the whole log, the second a snapshot.
CONFIG = RaftConfig(snapshot_interval=1 << 40, snapshot_bytes=1 << 60)


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def replica(state_dir: Path, config: RaftConfig = CONFIG) -> tuple[Replica, MemoryStore]:
    clock = SystemClock()
    store = MemoryStore(clock=clock)
    r = Replica(
        store, state_dir, "manager1", "127.0.0.1:1", Transport(node_id="manager1"), clock, config
    )
    return r, store


class ReadyCounter:
    """Counts the storage writes raft makes and the entries each carries."""

    def __init__(self) -> None:
        self.saves = 0
        self.entries = 0
        self.most = 0
        self._save = SQLiteStorage.save

    def install(self) -> None:
        counter = self

        def save(storage, hard_state, entries, snapshot=None):  # type: ignore[no-untyped-def]
            counter.saves += 1
            counter.entries += len(entries)
            counter.most = max(counter.most, len(entries))
            return counter._save(storage, hard_state, entries, snapshot)

        SQLiteStorage.save = save  # type: ignore[method-assign]


async def build(state_dir: Path, n: int, m: int, services: int) -> dict:
    counter = ReadyCounter()
    counter.install()
    r, store = replica(state_dir)
    await r.bootstrap()
    start = time.perf_counter()
    cpu = time.process_time()
    nodes = make_nodes(m)
    svcs = [make_service(i, n // services) for i in range(services)]
    await store.batch([(lambda tx, o=o: tx.create(o)) for o in [*nodes, *svcs]])
    now = dt.datetime.now(dt.UTC)
    created = 0
    for svc in svcs:
        tasks = [new_task(svc, now=now, slot=k + 1) for k in range(n // services)]
        await store.batch([(lambda tx, t=t: tx.create(t)) for t in tasks])
        created += len(tasks)
    create_s = time.perf_counter() - start

    await move_tasks_to_running(store, [node.ID for node in nodes], now)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu
    del nodes, svcs
    gc.collect()
    db = sum(p.stat().st_size for p in (state_dir / "raft").glob("raft.db*"))
    result = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,  # this process's, all threads: less swayed by other load
        "create_seconds": create_s,
        "writes_per_second": 2 * created / seconds,
        "tasks": store.view().count(Task),
        "raft_index": r.node.status().applied if r.node else 0,
        "storage_writes": counter.saves,
        "entries_written": counter.entries,
        "entries_per_write": counter.entries / max(1, counter.saves),
        "most_entries_in_a_write": counter.most,
        "log_bytes": db,
        "log_bytes_per_task": db / max(1, created),
        "rss_mib": rss_mib(),
    }
    await r.stop()
    store.close()
    return result


async def restart(state_dir: Path, snapshot: bool) -> dict:
    tune_gc()
    start = time.perf_counter()
    cpu = time.process_time()
    r, store = replica(state_dir)
    await r.restart()
    result = {
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu,
        "tasks": store.view().count(Task),
    }
    gc.collect()
    result["rss_mib"] = rss_mib()
    if snapshot:
        assert r.node is not None
        start = time.perf_counter()
        data = r.log.snapshot()
        result["snapshot_encode_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        await r.node.snapshot_now()
        result["snapshot_seconds"] = time.perf_counter() - start
        snaps = list((state_dir / "raft" / "snapshots").iterdir())
        result["snapshot_bytes"] = sum(p.stat().st_size for p in snaps)
        result["snapshot_plain_bytes"] = len(data)
    await r.stop()
    store.close()
    return result


def in_child(state_dir: Path, snapshot: bool) -> dict:
    """Restart in a fresh process, as a manager daemon would: its own time and memory."""
    cmd = [sys.executable, __file__, "--restart", str(state_dir)]
    if snapshot:
        cmd.append("--snapshot")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=1_000)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--dir", type=Path, help="where the manager's state goes (temporary)")
    parser.add_argument("--restart", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--snapshot", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.restart:
        print(json.dumps(await restart(args.restart, args.snapshot)))
        return

    tune_gc()
    base = Path(tempfile.mkdtemp(prefix="shoal-store-scale-", dir=args.dir))
    try:
        built = await build(base, args.tasks, args.nodes, args.services)
        print(
            f"build: {built['tasks']} tasks, {args.nodes} nodes in {built['seconds']:.1f} s "
            f"({built['writes_per_second']:.0f} task writes/s, CPU {built['cpu_seconds']:.1f} s), "
            f"{built['entries_written']} "
            f"entries in {built['storage_writes']} storage writes "
            f"({built['entries_per_write']:.2f} per write), log {built['log_bytes'] / 2**20:.1f}"
            f" MiB ({built['log_bytes_per_task']:.0f} B/task), RSS {built['rss_mib']:.0f} MiB",
            flush=True,
        )
        from_log = in_child(base, snapshot=True)
        print(
            f"restart from the log: {from_log['seconds']:.1f} s (CPU {from_log['cpu_seconds']:.1f} s), RSS {from_log['rss_mib']:.0f}"
            f" MiB; snapshot: {from_log['snapshot_seconds']:.1f} s (encoding "
            f"{from_log['snapshot_encode_seconds']:.1f} s), "
            f"{from_log['snapshot_bytes'] / 2**20:.1f} MiB",
            flush=True,
        )
        from_snapshot = in_child(base, snapshot=False)
        print(
            f"restart from the snapshot: {from_snapshot['seconds']:.1f} s "
            f"(CPU {from_snapshot['cpu_seconds']:.1f} s), "
            f"RSS {from_snapshot['rss_mib']:.0f} MiB",
            flush=True,
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    write_result(
        RESULTS,
        {
            "benchmark": "store_scale",
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "tasks": args.tasks,
            "nodes": args.nodes,
            "services": args.services,
            "build": built,
            "restart_from_log": from_log,
            "restart_from_snapshot": from_snapshot,
        },
    )


if __name__ == "__main__":
    asyncio.run(main())
