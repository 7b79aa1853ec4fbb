"""What durable raft storage costs: fsync, one Ready per SQLite transaction, snapshots, reopen.

Cases:
- raw fsync: write 1 KiB to a file and fsync it (the floor any durable log pays);
- ready: one SQLite transaction per Ready (hard state + N entries of S bytes), as a leader
  writes them, for synchronous=FULL (what shoal uses), NORMAL and OFF;
- snapshot: write a snapshot of S MiB (file, fsync, rename, fsync dir) and compact;
- reopen: load a log of 10,500 entries (Swarm's snapshot interval plus the 500 kept).

Prints a table and writes bench/results/raft_storage.json.
Run: .venv/bin/python bench/raft_storage.py [--quick] [--dir PATH (default: a temp dir in
the current directory's filesystem)]
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from shoal.raft.storage import SQLiteStorage
from shoal.raft.types import ConfState, Entry, HardState, Snapshot

sys.path.insert(0, str(Path(__file__).parent))
from result_file import write_result

RESULTS = Path(__file__).parent / "results" / "raft_storage.json"
CONF = ConfState(frozenset({1, 2, 3}), frozenset())


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def summary(lat: list[float], entries_per: int) -> dict:
    total = sum(lat)
    return {
        "n": len(lat),
        "median_ms": round(statistics.median(lat) * 1000, 3),
        "p99_ms": round(pct(lat, 0.99) * 1000, 3),
        "readies_per_s": round(len(lat) / total, 1),
        "entries_per_s": round(len(lat) * entries_per / total, 1),
    }


def bench_fsync(d: Path, n: int) -> dict:
    path = d / "fsync.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    lat = []
    try:
        for _ in range(n):
            t = time.perf_counter()
            os.write(fd, b"x" * 1024)
            os.fsync(fd)
            lat.append(time.perf_counter() - t)
    finally:
        os.close(fd)
    return summary(lat, 1)


def bench_ready(d: Path, sync: str, n: int, per: int, size: int) -> dict:
    s = SQLiteStorage(d / f"ready-{sync}-{per}-{size}", synchronous=sync)
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
    return summary(lat, per)


def bench_snapshot(d: Path, mib: int, n: int) -> dict:
    s = SQLiteStorage(d / f"snap-{mib}")
    s.save(HardState(2, 1, 1000), [Entry(i, 2, data=b"x" * 100) for i in range(1, 1001)])
    data = os.urandom(mib << 20)
    lat = []
    for k in range(n):
        t = time.perf_counter()
        s.save_snapshot(Snapshot(1000 - k, 2, CONF, data), (500, 2))
        lat.append(time.perf_counter() - t)
    s.close()
    return {
        "size_mib": mib,
        "median_ms": round(statistics.median(lat) * 1000, 1),
        "mib_per_s": round(mib / statistics.median(lat), 1),
    }


def bench_reopen(d: Path, entries: int, size: int) -> dict:
    path = d / "reopen"
    s = SQLiteStorage(path, synchronous="OFF")
    payload = os.urandom(size)
    for lo in range(1, entries + 1, 500):
        s.save(
            HardState(2, 1, lo),
            [Entry(i, 2, data=payload) for i in range(lo, min(entries, lo + 499) + 1)],
        )
    s.close()
    lat = []
    for _ in range(3):
        t = time.perf_counter()
        st = SQLiteStorage(path).load()
        lat.append(time.perf_counter() - t)
        assert len(st.entries) == entries
    return {
        "entries": entries,
        "entry_bytes": size,
        "median_ms": round(statistics.median(lat) * 1000, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--dir", type=Path, default=Path.cwd())
    args = ap.parse_args()
    n = 200 if args.quick else 1000
    results: dict = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "sqlite": __import__("sqlite3").sqlite_version,
        "dir": str(args.dir.resolve()),
        "cases": {},
    }
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="raft-bench-") as tmp:
        d = Path(tmp)
        cases = results["cases"]
        cases["raw_fsync_1KiB"] = bench_fsync(d, n)
        for sync in ("FULL", "NORMAL", "OFF"):
            cases[f"ready_{sync}_1x1KiB"] = bench_ready(d, sync, n, 1, 1024)
        cases["ready_FULL_1x64KiB"] = bench_ready(d, "FULL", n // 2, 1, 64 << 10)
        cases["ready_FULL_100x1KiB"] = bench_ready(d, "FULL", n // 5, 100, 1024)
        cases["ready_FULL_hardstate_only"] = bench_ready(d, "FULL", n, 0, 0)
        for mib in (1, 16) if args.quick else (1, 16, 64):
            cases[f"snapshot_{mib}MiB"] = bench_snapshot(d, mib, 3)
        cases["reopen_10500x1KiB"] = bench_reopen(d, 10500, 1024)
    print(f"raft storage on {results['dir']} (sqlite {results['sqlite']}, {results['platform']})")
    print(f"{'case':30} {'median ms':>10} {'p99 ms':>8} {'Ready/s':>9} {'entries/s':>10}")
    for name, c in results["cases"].items():
        if "readies_per_s" in c:
            print(
                f"{name:30} {c['median_ms']:>10} {c['p99_ms']:>8} "
                f"{c['readies_per_s']:>9} {c['entries_per_s']:>10}"
            )
        elif "mib_per_s" in c:
            print(f"{name:30} {c['median_ms']:>10}   ({c['mib_per_s']} MiB/s)")
        else:
            print(f"{name:30} {c['median_ms']:>10}   (load {c['entries']} entries)")
    write_result(RESULTS, results)


if __name__ == "__main__":
    main()
