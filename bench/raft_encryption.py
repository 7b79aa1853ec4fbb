"""What encrypting the raft store at rest costs: the same writes with and without a cipher,
on the same machine in one run. The two stores are open side by side and written step by step
in turn (which one goes first alternates), so that both see the same disk and the same load
from other processes: on a shared machine an fsync now and then takes milliseconds, and a run
after a run would charge those to whichever ran at the time.

Cases (SQLite synchronous=FULL, as shoal runs it):
- raft_propose_1KiB: proposals of 1 KiB committed by a one-manager raft (RaftNode over
  SQLiteStorage in its worker thread, as a manager runs it), 32 proposers at once, 256
  proposals a step: what a client's write sees, raft's own costs included;
- ready_1x1KiB: one Ready per entry of 1 KiB (a leader under light load: fsync-bound);
- ready_100x1KiB: Readies of 100 entries of 1 KiB (under load: the sealing adds up);
- ready_1x64KiB: one Ready per 64 KiB entry (large objects: AES-GCM's bytes per second);
- snapshot_16MiB: write a 16 MiB snapshot and compact;
- reopen_10500x1KiB: load a log of 10,500 entries (Swarm's snapshot interval plus 500 kept);
- rotation_10500x1KiB (encrypted only): DataKeyRotation reseals a log of 10,500 entries
  under a new key while raft proposals go on; the rotation's time and the latency of the
  proposals committed meanwhile.

For each: entries/s and MB/s of entry data (over all steps), p50/p99 latency of a step (a
Ready, a proposal, a snapshot, a load), and the encrypted store's throughput as a share of the
plaintext one's (target: at least 90%); "median share" compares the median step's throughput,
which the other processes' stalls (an fsync of 10 ms now and then) do not move. Prints a table and writes
bench/results/raft_encryption.json.
Run: .venv/bin/python bench/raft_encryption.py [--quick] [--dir PATH (default: a temp dir in
the current directory's filesystem)]
"""

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shoal.clock import SystemClock
from shoal.manager.consensus.raft_key_rotation import DataKeyRotation
from shoal.manager.consensus.raft_keys import RaftKeys
from shoal.raft.cipher import KeyRing
from shoal.raft.core import bootstrap
from shoal.raft.node import RaftNode
from shoal.raft.storage import SQLiteStorage
from shoal.raft.types import ConfChange, ConfState, Entry, HardState, Message, RaftConfig, Snapshot

sys.path.insert(0, str(Path(__file__).parent))
from result_file import write_result

RESULTS = Path(__file__).parent / "results" / "raft_encryption.json"
CONF = ConfState(frozenset({1, 2, 3}), frozenset())


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def ring() -> KeyRing:
    return KeyRing({1: os.urandom(32)}, 1)


@dataclass
class Step:
    seconds: float
    entries: int
    size: int  # bytes of entry data
    latencies: list[float]


class Workload(Protocol):
    async def step(self) -> Step: ...

    async def close(self) -> None: ...


class Readies:
    """One Ready (hard state + ``per`` entries of ``size`` bytes) a step, as a leader saves it."""

    def __init__(self, path: Path, cipher: KeyRing | None, per: int, size: int) -> None:
        self.s = SQLiteStorage(path, cipher=cipher)
        self.per, self.size = per, size
        self.payload = os.urandom(size)
        self.index = 0
        self.steps = 0

    async def step(self) -> Step:
        entries = [Entry(self.index + j + 1, 2, data=self.payload) for j in range(self.per)]
        self.index += self.per
        t = time.perf_counter()
        self.s.save(HardState(2, 1, self.index - self.per), entries)
        took = time.perf_counter() - t
        self.steps += 1
        if self.steps % 500 == 0:  # keep the table from growing without bound, as compaction
            self.s.save_snapshot(Snapshot(self.index, 2, CONF, b"s"), (self.index - 10, 2))
        return Step(took, self.per, self.per * self.size, [took])

    async def close(self) -> None:
        self.s.close()


class Snapshots:
    def __init__(self, path: Path, cipher: KeyRing | None, mib: int) -> None:
        self.s = SQLiteStorage(path, cipher=cipher)
        self.s.save(HardState(2, 1, 1000), [Entry(i, 2, data=b"x" * 100) for i in range(1, 1001)])
        self.data = os.urandom(mib << 20)
        self.k = 0

    async def step(self) -> Step:
        self.k += 1
        t = time.perf_counter()
        self.s.save_snapshot(Snapshot(1000 - self.k, 2, CONF, self.data), (500, 2))
        took = time.perf_counter() - t
        return Step(took, 1, len(self.data), [took])

    async def close(self) -> None:
        self.s.close()


def fill(path: Path, cipher: KeyRing | None, entries: int, size: int) -> None:
    s = SQLiteStorage(path, synchronous="OFF", cipher=cipher)
    payload = os.urandom(size)
    for lo in range(1, entries + 1, 500):
        batch = [Entry(i, 2, data=payload) for i in range(lo, min(entries, lo + 499) + 1)]
        s.save(HardState(2, 1, lo), batch)
    s.close()


class Reopen:
    """Open a log of ``entries`` entries and load it, as a manager does when it starts."""

    def __init__(self, path: Path, cipher: KeyRing | None, entries: int, size: int) -> None:
        fill(path, cipher, entries, size)
        self.path, self.cipher, self.entries, self.size = path, cipher, entries, size

    async def step(self) -> Step:
        t = time.perf_counter()
        s = SQLiteStorage(self.path, cipher=self.cipher)
        st = s.load()
        took = time.perf_counter() - t
        s.close()
        assert len(st.entries) == self.entries
        return Step(took, self.entries, self.entries * self.size, [took])

    async def close(self) -> None:
        pass


class NoPeers:
    def send(self, messages: list[Message]) -> None:
        pass


class Discard:
    """A state machine that keeps nothing: the bench measures the log, not the store."""

    def apply(self, index: int, data: bytes) -> None:
        pass

    def apply_conf_change(self, index: int, change: ConfChange) -> None:
        pass

    def snapshot(self) -> bytes:
        return b""

    def restore(self, data: bytes) -> None:
        pass


async def leading_node(storage: SQLiteStorage, config: RaftConfig | None = None) -> RaftNode:
    node = RaftNode(1, storage, NoPeers(), Discard(), SystemClock(), config=config)
    await node.start(bootstrap({1: b""}))
    await node.campaign()
    while not node.leader_ready:
        await node.wait_leader_change()
    return node


async def propose_for(
    node: RaftNode, total: int, writers: int, size: int, stop: asyncio.Event | None = None
) -> tuple[list[float], float]:
    """``writers`` proposers at once, ``total`` proposals in all (or until ``stop``)."""
    payload = os.urandom(size)
    lat: list[float] = []
    left = [total]

    async def writer() -> None:
        while left[0] > 0 and not (stop is not None and stop.is_set()):
            left[0] -= 1
            t = time.perf_counter()
            await node.propose(payload)
            lat.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    return lat, time.perf_counter() - t0


class Proposals:
    """``per_step`` proposals of ``size`` bytes through a one-manager raft, 32 at once."""

    def __init__(self, node: RaftNode, per_step: int, size: int) -> None:
        self.node, self.per_step, self.size = node, per_step, size

    @classmethod
    async def start(cls, path: Path, cipher: KeyRing | None, size: int) -> "Proposals":
        return cls(await leading_node(SQLiteStorage(path, cipher=cipher)), 256, size)

    async def step(self) -> Step:
        lat, took = await propose_for(self.node, self.per_step, 32, self.size)
        return Step(took, len(lat), len(lat) * self.size, lat)

    async def close(self) -> None:
        await self.node.stop()


def summary(steps: list[Step]) -> dict:
    seconds = sum(s.seconds for s in steps)
    lat = [x for s in steps for x in s.latencies]
    return {
        "steps": len(steps),
        "entries_per_s": round(sum(s.entries for s in steps) / seconds, 1),
        "median_step_entries_per_s": round(
            statistics.median(s.entries / s.seconds for s in steps), 1
        ),
        "mb_per_s": round(sum(s.size for s in steps) / seconds / 1e6, 2),
        "p50_ms": round(statistics.median(lat) * 1000, 3),
        "p99_ms": round(pct(lat, 0.99) * 1000, 3),
    }


async def interleaved(plain: Workload, encrypted: Workload, steps: int) -> dict:
    done: dict[str, list[Step]] = {"plain": [], "encrypted": []}
    try:
        for k in range(steps):
            order = [("plain", plain), ("encrypted", encrypted)]
            for mode, w in order if k % 2 == 0 else reversed(order):
                done[mode].append(await w.step())
    finally:
        await plain.close()
        await encrypted.close()
    case: dict = {mode: summary(s) for mode, s in done.items()}
    case["share"] = round(case["encrypted"]["entries_per_s"] / case["plain"]["entries_per_s"], 3)
    case["median_share"] = round(
        case["encrypted"]["median_step_entries_per_s"] / case["plain"]["median_step_entries_per_s"],
        3,
    )
    return case


async def run_rotation(path: Path, entries: int, size: int) -> dict:
    """A manager's rotation as the replica runs it: DataKeyRotation in worker threads, batch
    by batch, while a raft node goes on committing proposals (4 proposers at once)."""
    keys = RaftKeys.create(path / "raft-keys.json")
    storage = SQLiteStorage(path / "raft", cipher=keys.cipher)
    # No snapshot while filling: the log holds all of them, as before a snapshot.
    node = await leading_node(storage, RaftConfig(snapshot_interval=10**9))
    rotation = DataKeyRotation(keys, storage)
    stop = asyncio.Event()
    try:
        await propose_for(node, entries, 64, size)  # the log to reseal
        writes = asyncio.create_task(propose_for(node, 10**9, 4, 1024, stop))
        t = time.perf_counter()
        await rotation.rotate()
        took = time.perf_counter() - t
        stop.set()
        lat, _ = await writes
        assert storage.count_not_under_write_key() == 0
    finally:
        await node.stop()
    return {
        "entries": entries,
        "seconds": round(took, 3),
        "entries_per_s": round(entries / took, 1),
        "mb_per_s": round(entries * size / took / 1e6, 2),
        "writes_meanwhile": len(lat),
        "p50_ms": round(statistics.median(lat) * 1000, 3),
        "p99_ms": round(pct(lat, 0.99) * 1000, 3),
    }


async def run_all(d: Path, quick: bool) -> dict:
    n = 300 if quick else 1500
    cases: dict = {}

    def both(make: Callable[[Path, KeyRing | None], Workload], name: str) -> tuple:
        return make(d / f"{name}-plain", None), make(d / f"{name}-encrypted", ring())

    cases["raft_propose_1KiB"] = await interleaved(
        await Proposals.start(d / "propose-plain", None, 1024),
        await Proposals.start(d / "propose-encrypted", ring(), 1024),
        n // 30,
    )
    cases["ready_1x1KiB"] = await interleaved(*both(lambda p, c: Readies(p, c, 1, 1024), "r1"), n)
    cases["ready_100x1KiB"] = await interleaved(
        *both(lambda p, c: Readies(p, c, 100, 1024), "r100"), n // 3
    )
    cases["ready_1x64KiB"] = await interleaved(
        *both(lambda p, c: Readies(p, c, 1, 64 << 10), "r64"), n // 2
    )
    cases["snapshot_16MiB"] = await interleaved(
        *both(lambda p, c: Snapshots(p, c, 16), "snap"), 4 if quick else 10
    )
    cases["reopen_10500x1KiB"] = await interleaved(
        *both(lambda p, c: Reopen(p, c, 10500, 1024), "reopen"), 3 if quick else 9
    )
    cases["rotation_10500x1KiB"] = await run_rotation(d / "rotation", 10500, 1024)
    return cases


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--dir", type=Path, default=Path.cwd())
    args = ap.parse_args()
    results: dict = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "sqlite": __import__("sqlite3").sqlite_version,
        "dir": str(args.dir.resolve()),
        "cipher": "AES-256-GCM (cryptography)",
    }
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="raft-enc-bench-") as tmp:
        results["cases"] = asyncio.run(run_all(Path(tmp), args.quick))
    print(f"raft storage encryption on {results['dir']} (sqlite {results['sqlite']})")
    print(
        f"{'case':20} {'mode':10} {'entries/s':>10} {'MB/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'share':>6} {'median share':>12}"
    )
    for name, case in results["cases"].items():
        if name.startswith("rotation"):
            continue
        for mode in ("plain", "encrypted"):
            c = case[mode]
            share = f"{case['share']:.0%}" if mode == "encrypted" else ""
            median_share = f"{case['median_share']:.0%}" if mode == "encrypted" else ""
            print(
                f"{name:20} {mode:10} {c['entries_per_s']:>10.0f} {c['mb_per_s']:>8.1f} "
                f"{c['p50_ms']:>8.3f} {c['p99_ms']:>8.3f} {share:>6} {median_share:>12}"
            )
    rot = results["cases"]["rotation_10500x1KiB"]
    print(
        f"rotation: {rot['entries']} entries resealed in {rot['seconds']:.2f} s "
        f"({rot['entries_per_s']:.0f} entries/s); {rot['writes_meanwhile']} proposals committed "
        f"meanwhile, p50 {rot['p50_ms']:.3f} ms, p99 {rot['p99_ms']:.3f} ms"
    )
    write_result(RESULTS, results)


if __name__ == "__main__":
    main()
