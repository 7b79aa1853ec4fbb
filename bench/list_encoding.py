"""How long encoding a long list answer (`GET /tasks` of 100,000 tasks) keeps the interpreter
lock in one go: the json module's encoder is C that never lets it go, so while it runs no
other thread of the process runs, not even raft's stand-in heartbeat thread (issue 15).

A thread of pure Python ticks as often as the lock lets it; its longest gap while the list is
encoded in a worker thread is how long the lock was held without a break. Measured for one
call over the whole list (before) and for ``encode_list`` (a slice of items at a time).

Run: .venv/bin/python bench/list_encoding.py [--tasks 100000]
"""

import argparse
import datetime as dt
import json
import threading
import time

from result_file import write_labelled_result
from store_fill import make_service

from shoal.api.objects import Task
from shoal.engineapi.responses import encode_list
from shoal.manager.orchestrator.task import new_task


def longest_gap(work) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Run ``work`` in a thread while this one ticks; (longest gap between ticks, work time)."""
    done = threading.Event()
    spent: list[float] = []

    def run() -> None:
        t = time.perf_counter()
        work()
        spent.append(time.perf_counter() - t)
        done.set()

    worker = threading.Thread(target=run)
    last = time.perf_counter()
    gap = 0.0
    worker.start()
    while not done.is_set():
        now = time.perf_counter()
        gap = max(gap, now - last)
        last = now
    worker.join()
    return gap, spent[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    service = make_service(0, args.tasks)
    now = dt.datetime.now(dt.UTC)
    data = [Task.to_api(new_task(service, now=now, slot=i + 1)) for i in range(args.tasks)]
    whole_gap, whole_time = longest_gap(
        lambda: (json.dumps(data, separators=(",", ":")) + "\n").encode()
    )
    sliced_gap, sliced_time = longest_gap(lambda: encode_list(data))
    figures = {
        "one_call_longest_hold_seconds": round(whole_gap, 4),
        "one_call_seconds": round(whole_time, 3),
        "sliced_longest_hold_seconds": round(sliced_gap, 4),
        "sliced_seconds": round(sliced_time, 3),
    }
    print(
        f"{args.tasks} tasks: one call held the interpreter lock {whole_gap:.3f} s "
        f"(encoding {whole_time:.2f} s); a slice at a time, {sliced_gap:.3f} s at most "
        f"(encoding {sliced_time:.2f} s)"
    )
    write_labelled_result("list_encoding", args.label, {"tasks": args.tasks, **figures})


if __name__ == "__main__":
    main()
