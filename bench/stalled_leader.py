"""How long a leader's event loop can be held up before leadership moves (issue 15), with and
without the thread that sends its heartbeats meanwhile (``RaftConfig.stand_in_limit``).

Three managers' raft replicas in this process, each on an event loop of its own in a thread of
its own (tests/integration/threaded_managers.py: real replicas, the Raft gRPC service over
mutual TLS, raft's default timing: 0.1 s ticks, an election timeout of 1 to 2 s). Each trial
holds the leader's loop for a while, sleeping (the interpreter lock free) or spinning in
Python (the lock held, as by a loop busy with work, released only at the switch interval),
and watches the followers: the figure is whether, and how many seconds into the hold, a
follower moved to a new term (an election), the leader's loop let go meanwhile.

Modes: ``off`` (no stand-in: the driver's heartbeats only, as before), ``on`` (the default,
stand-in limit 10 s).

Prints a table and writes bench/results/stalled_leader.json.
Run: .venv/bin/python bench/stalled_leader.py [--holds 0.5,1,1.5,2,3,5,8,12] [--spin 3,8]
"""

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import checkout_path  # noqa: F401  (first: this checkout's tests/ and src/)

from shoal.raft.types import RaftConfig
from tests.integration.threaded_managers import (
    ThreadedManager,
    start_managers,
    stop_managers,
    wait_agreed_leader,
)

RESULTS = Path(__file__).parent / "results" / "stalled_leader.json"
SETTLE = 3.0  # seconds watched after the hold ends
MODES = {"off": 0.0, "on": 10.0}


def trial(managers: list[ThreadedManager], hold: float, spin: bool) -> dict:
    leader_id = wait_agreed_leader(managers, timeout=30.0)
    leader = next(m for m in managers if m.replica.raft_id == leader_id)
    followers = [m for m in managers if m is not leader]
    term = leader.term
    sent_before = leader.replica.stand_in.beats.sent if leader.replica.stand_in else 0
    t0 = time.monotonic()
    leader.stall(hold, spin=spin)
    moved_after = None
    while time.monotonic() - t0 < hold + SETTLE:
        if moved_after is None and any(f.term > term for f in followers):
            moved_after = round(time.monotonic() - t0, 2)
        time.sleep(0.05)
    new_leader = wait_agreed_leader(managers, timeout=30.0)
    sent = (leader.replica.stand_in.beats.sent if leader.replica.stand_in else 0) - sent_before
    return {
        "hold_seconds": hold,
        "hold": "spin" if spin else "sleep",
        "leadership_moved": new_leader != leader_id or moved_after is not None,
        "moved_after_seconds": moved_after,
        "stand_in_heartbeats": sent,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--holds", default="0.5,1,1.5,2,3,5,8,12")
    ap.add_argument("--spin", default="3,8", help="holds also run spinning, in mode on")
    args = ap.parse_args()
    holds = [float(h) for h in args.holds.split(",")]
    spins = [float(h) for h in args.spin.split(",") if h]

    results: dict[str, list[dict]] = {}
    for mode, limit in MODES.items():
        root = Path(tempfile.mkdtemp(prefix="shoal-stalled-", dir="/tmp"))
        managers = start_managers(root, RaftConfig(stand_in_limit=limit))
        try:
            plan = [(h, False) for h in holds] + [(h, True) for h in spins if mode == "on"]
            for hold, spin in plan:
                r = trial(managers, hold, spin)
                results.setdefault(mode, []).append(r)
                moved = (
                    f"moved after {r['moved_after_seconds']} s" if r["leadership_moved"] else "kept"
                )
                print(f"{mode:3s} hold {hold:5.1f} s ({r['hold']:5s}): {moved}", flush=True)
        finally:
            stop_managers(managers)
            shutil.rmtree(root, ignore_errors=True)

    def longest_kept(mode: str) -> float:
        kept = [r["hold_seconds"] for r in results[mode] if not r["leadership_moved"]]
        return max(kept, default=0.0)

    summary = {
        "benchmark": "stalled_leader",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "managers": 3,
        "tick_seconds": 0.1,
        "election_timeout_seconds": [1.0, 2.0],
        "stand_in_limit_seconds": MODES,
        "longest_hold_kept_seconds": {mode: longest_kept(mode) for mode in results},
        "results": results,
    }
    print()
    print(f"{'hold s':>7} {'off':>16} {'on':>16}")
    for hold in holds:
        row = []
        for mode in MODES:
            r = next(r for r in results[mode] if r["hold_seconds"] == hold and r["hold"] == "sleep")
            row.append(f"moved at {r['moved_after_seconds']}" if r["leadership_moved"] else "kept")
        print(f"{hold:7.1f} {row[0]:>16} {row[1]:>16}")
    print(f"longest hold with leadership kept: {summary['longest_hold_kept_seconds']}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
