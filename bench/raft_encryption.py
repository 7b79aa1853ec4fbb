"""What encrypting the raft store at rest costs: the same writes with and without a cipher,
on the same machine in one run, rounds interleaved so that both see the same disk and load.

Cases (SQLite synchronous=FULL, as shoal runs it):
- raft_propose_1KiB: proposals of 1 KiB committed by a one-manager raft (RaftNode over
  SQLiteStorage in its worker thread, as a manager runs it), 32 proposers at once: what a
  client's write sees, raft's own costs included;
- ready_1x1KiB: one Ready per entry of 1 KiB (a leader under light load: fsync-bound);
- ready_100x1KiB: Readies of 100 entries of 1 KiB (under load: the sealing adds up);
- ready_1x64KiB: one Ready per 64 KiB entry (large objects: AES-GCM's bytes per second);
- snapshot_16MiB: write a 16 MiB snapshot and compact;
- reopen_10500x1KiB: load a log of 10,500 entries (Swarm's snapshot interval plus 500 kept);
- rotation_10500x1KiB (encrypted only): DataKeyRotation reseals a log of 10,500 entries
  under a new key while raft proposals go on; the rotation's time and the latency of the
  proposals committed meanwhile.

For each: entries/s, MB/s of entry data, p50/p99 latency of a Ready, and the encrypted run's
throughput as a share of the plaintext one (target: at least 90%). Prints a table and writes
bench/results/raft_encryption.json.
Run: .venv/bin/python bench/raft_encryption.py [--quick] [--rounds N] [--dir PATH (default:
a temp dir in the current directory's filesystem)]
"""

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from shoal.clock import SystemClock
from shoal.manager.consensus.raft_key_rotation import DataKeyRotation
from shoal.manager.consensus.raft_keys import RaftKeys
from shoal.raft.cipher import KeyRing
from shoal.raft.core import bootstrap
from shoal.raft.node import RaftNode
from shoal.raft.storage import SQLiteStorage
from shoal.raft.types import ConfChange, ConfState, Entry, HardState, Message, RaftConfig, Snapshot

RESULTS = Path(__file__).parent / "results" / "raft_encryption.json"
CONF = ConfState(frozenset({1, 2, 3}), frozenset())
BATCH = 256  # as DataKeyRotation


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def ring() -> KeyRing:
    return KeyRing({1: os.urandom(32)}, 1)


def run_readies(path: Path, cipher: KeyRing | None, n: int, per: int, size: int) -> dict:
    s = SQLiteStorage(path, cipher=cipher)
    payload = os.urandom(size)
    lat = []
    index = 0
    for k in range(n):
        entries = [Entry(index + j + 1, 2, data=payload) for j in range(per)]
        index += per
        t = time.perf_counter()
        s.save(HardState(2, 1, index - per), entries)
        lat.append(time.perf_counter() - t)
        if k % 500 == 499:  # keep the table from growing without bound, as compaction does
            s.save_snapshot(Snapshot(index, 2, CONF, b"s"), (index - 10, 2))
    s.close()
    total = sum(lat)
    return {
        "entries_per_s": n * per / total,
        "mb_per_s": n * per * size / total / 1e6,
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": pct(lat, 0.99) * 1000,
    }


def run_snapshot(path: Path, cipher: KeyRing | None, mib: int, n: int) -> dict:
    s = SQLiteStorage(path, cipher=cipher)
    s.save(HardState(2, 1, 1000), [Entry(i, 2, data=b"x" * 100) for i in range(1, 1001)])
    data = os.urandom(mib << 20)
    lat = []
    for k in range(n):
        t = time.perf_counter()
        s.save_snapshot(Snapshot(1000 - k, 2, CONF, data), (500, 2))
        lat.append(time.perf_counter() - t)
    s.close()
    med = statistics.median(lat)
    return {
        "entries_per_s": n / sum(lat),
        "mb_per_s": (mib << 20) / med / 1e6,
        "p50_ms": med * 1000,
        "p99_ms": max(lat) * 1000,
    }


def fill(path: Path, cipher: KeyRing | None, entries: int, size: int) -> None:
    s = SQLiteStorage(path, synchronous="OFF", cipher=cipher)
    payload = os.urandom(size)
    for lo in range(1, entries + 1, 500):
        batch = [Entry(i, 2, data=payload) for i in range(lo, min(entries, lo + 499) + 1)]
        s.save(HardState(2, 1, lo), batch)
    s.close()


def run_reopen(path: Path, cipher: KeyRing | None, entries: int, size: int) -> dict:
    fill(path, cipher, entries, size)
    lat = []
    for _ in range(3):
        t = time.perf_counter()
        st = SQLiteStorage(path, cipher=cipher).load()
        lat.append(time.perf_counter() - t)
        assert len(st.entries) == entries
    med = statistics.median(lat)
    return {
        "entries_per_s": entries / med,
        "mb_per_s": entries * size / med / 1e6,
        "p50_ms": med * 1000,
        "p99_ms": max(lat) * 1000,
    }


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


def run_propose(path: Path, cipher: KeyRing | None, total: int, size: int) -> dict:
    async def go() -> dict:
        node = await leading_node(SQLiteStorage(path, cipher=cipher))
        try:
            lat, took = await propose_for(node, total, 32, size)
        finally:
            await node.stop()
        return {
            "entries_per_s": len(lat) / took,
            "mb_per_s": len(lat) * size / took / 1e6,
            "p50_ms": statistics.median(lat) * 1000,
            "p99_ms": pct(lat, 0.99) * 1000,
        }

    return asyncio.run(go())


def run_rotation(path: Path, entries: int, size: int) -> dict:
    """A manager's rotation as the replica runs it: DataKeyRotation in worker threads, batch
    by batch, while a raft node goes on committing proposals (4 proposers at once)."""

    async def go() -> dict:
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
            "seconds": took,
            "entries_per_s": entries / took,
            "mb_per_s": entries * size / took / 1e6,
            "writes_meanwhile": len(lat),
            "p50_ms": statistics.median(lat) * 1000,
            "p99_ms": pct(lat, 0.99) * 1000,
        }

    return asyncio.run(go())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=0, help="interleaved rounds (default 3, 1 quick)")
    ap.add_argument("--dir", type=Path, default=Path.cwd())
    args = ap.parse_args()
    n = 200 if args.quick else 1000
    rounds = args.rounds or (1 if args.quick else 3)
    cases = {
        "raft_propose_1KiB": lambda p, c: run_propose(p, c, 2 * n, 1024),
        "ready_1x1KiB": lambda p, c: run_readies(p, c, n, 1, 1024),
        "ready_100x1KiB": lambda p, c: run_readies(p, c, n // 5, 100, 1024),
        "ready_1x64KiB": lambda p, c: run_readies(p, c, n // 2, 1, 64 << 10),
        "snapshot_16MiB": lambda p, c: run_snapshot(p, c, 16, 3),
        "reopen_10500x1KiB": lambda p, c: run_reopen(p, c, 10500, 1024),
    }
    results: dict = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "sqlite": __import__("sqlite3").sqlite_version,
        "dir": str(args.dir.resolve()),
        "rounds": rounds,
        "cipher": "AES-256-GCM (cryptography)",
        "cases": {},
    }
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="raft-enc-bench-") as tmp:
        d = Path(tmp)
        for name, run in cases.items():
            runs: dict[str, list[dict]] = {"plain": [], "encrypted": []}
            for r in range(rounds):
                # Alternate which goes first, so neither always gets the warmer disk.
                order = ("plain", "encrypted") if r % 2 == 0 else ("encrypted", "plain")
                for mode in order:
                    cipher = ring() if mode == "encrypted" else None
                    runs[mode].append(run(d / f"{name}-{mode}-{r}", cipher))
            case = {}
            for mode, rs in runs.items():
                # The median round by throughput, its latencies with it.
                best = sorted(rs, key=lambda x: x["entries_per_s"])[len(rs) // 2]
                case[mode] = {k: round(v, 3) for k, v in best.items()}
            case["encrypted_share"] = round(
                case["encrypted"]["entries_per_s"] / case["plain"]["entries_per_s"], 3
            )
            results["cases"][name] = case
        results["cases"]["rotation_10500x1KiB"] = {
            k: round(v, 3) for k, v in run_rotation(d / "rotation", 10500, 1024).items()
        }
    print(
        f"raft storage encryption on {results['dir']} (sqlite {results['sqlite']}, {rounds} rounds)"
    )
    print(
        f"{'case':20} {'mode':10} {'entries/s':>10} {'MB/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'share':>6}"
    )
    for name, case in results["cases"].items():
        if name.startswith("rotation"):
            continue
        for mode in ("plain", "encrypted"):
            c = case[mode]
            share = f"{case['encrypted_share']:.0%}" if mode == "encrypted" else ""
            print(
                f"{name:20} {mode:10} {c['entries_per_s']:>10.0f} {c['mb_per_s']:>8.1f} "
                f"{c['p50_ms']:>8.3f} {c['p99_ms']:>8.3f} {share:>6}"
            )
    rot = results["cases"]["rotation_10500x1KiB"]
    print(
        f"rotation: {rot['entries']} entries resealed in {rot['seconds']:.2f} s "
        f"({rot['entries_per_s']:.0f} entries/s); {rot['writes_meanwhile']} proposals committed "
        f"meanwhile, p50 {rot['p50_ms']:.3f} ms, p99 {rot['p99_ms']:.3f} ms"
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
