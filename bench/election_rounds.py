"""Failover elections when messages are slow: how long until a new leader, and how often the
first round of votes comes to nothing.

Under a 1,000-node fleet a manager's event loop answers a raft message 0.1-0.4 s after it
arrives (issue 15), so the two survivors of a killed leader often time out within one round
trip of each other. Each can then grant the other's pre-vote before hearing that its own was
granted; both become candidates of one term, each votes for itself, and the vote is split:
a second round comes an election timeout (1-2 s) later.

This runs the real raft ``Core`` of N voters in a simulated network: ticks of 0.1 s, Swarm's
ElectionTick 10 and HeartbeatTick 1, pre-vote and check-quorum as shoal runs them. A leader
is elected and serves heartbeats for a while, then dies at a random moment; every message
after that arrives after a delay drawn from [--delay-min, --delay-max] seconds (each node's
answer waiting for its loop). Per seed: the time from the kill to the new leader, and the
rounds it took (the terms campaigned in). Prints the distribution; writes
bench/results/election_rounds[-LABEL].json.

Run: .venv/bin/python bench/election_rounds.py [--voters 3 --seeds 2000 --delay-min 0.1
     --delay-max 0.3 --label NAME]
"""

import argparse
import heapq
import itertools
import random
import statistics
import sys
from collections.abc import Callable
from typing import Any

from result_file import write_labelled_result

from shoal.raft.core import Core, bootstrap
from shoal.raft.storage import MemoryStorage
from shoal.raft.types import Message, RaftConfig, Role

TICK = 0.1  # seconds, as shoal's managers tick


class Failover:
    """One seed: a cluster elected with quick messages, its leader killed, slow messages."""

    def __init__(self, seed: int, voters: int, delay: tuple[float, float]) -> None:
        self.rng = random.Random(seed)
        self.delay = delay
        self.now = 0.0
        self.queue: list[tuple[float, int, Callable[[], None]]] = []
        self.seq = itertools.count()
        self.dead: set[int] = set()
        self.slow = False
        self.cores: dict[int, Core] = {}
        self.storages: dict[int, MemoryStorage] = {}
        ids = list(range(1, voters + 1))
        initial = bootstrap({i: b"" for i in ids})
        for i in ids:
            storage = MemoryStorage()
            storage.save(initial.hard_state, initial.entries, initial.snapshot)
            self.storages[i] = storage
            self.cores[i] = Core(i, RaftConfig(), random.Random(f"{seed}/{i}"), storage.load())
            # Each node's ticks at a phase of its own.
            self.at(self.rng.uniform(0, TICK), self.tick, i)
        self.terms: set[int] = set()  # terms campaigned in after the kill

    def at(self, t: float, fn: Callable[[], None], *args: Any) -> None:
        heapq.heappush(self.queue, (t, next(self.seq), lambda: fn(*args)))

    def tick(self, i: int) -> None:
        if i in self.dead:
            return
        self.cores[i].tick()
        self.drain(i)
        self.at(self.now + TICK, self.tick, i)

    def drain(self, i: int) -> None:
        core = self.cores[i]
        while core.has_ready():
            rd = core.ready()
            self.storages[i].save(rd.hard_state, rd.entries, rd.snapshot)
            for m in rd.messages:
                self.send(m)
            if self.slow and rd.soft_state is not None and rd.soft_state.role is Role.CANDIDATE:
                self.terms.add(core.term)
            core.advance(rd)

    def send(self, m: Message) -> None:
        lo, hi = self.delay if self.slow else (0.001, 0.005)
        self.at(self.now + self.rng.uniform(lo, hi), self.deliver, m)

    def deliver(self, m: Message) -> None:
        if m.to in self.dead:
            return
        self.cores[m.to].step(m)
        self.drain(m.to)

    def leader(self) -> int | None:
        leaders = [i for i, c in self.cores.items() if i not in self.dead and c.is_leader]
        return leaders[0] if leaders else None

    def run_until(self, done: Callable[[], bool], limit: float) -> bool:
        while self.queue and not done():
            if self.queue[0][0] > limit:
                return False
            t, _, fn = heapq.heappop(self.queue)
            self.now = t
            fn()
        return done()

    def failover(self) -> tuple[float, int]:
        """Seconds from the leader's death to the next leader, and the rounds it took."""
        if not self.run_until(lambda: self.leader() is not None, 30.0):
            raise RuntimeError("no first leader")
        # Heartbeats for a while, then the kill at a moment of no particular phase.
        self.run_until(lambda: False, self.now + 2.0 + self.rng.uniform(0, 1.0))
        old = self.leader()
        assert old is not None
        self.dead.add(old)
        self.slow = True
        killed = self.now
        found = self.run_until(lambda: self.leader() is not None, killed + 60.0)
        if not found:
            raise RuntimeError("no leader within 60 s of the kill")
        return self.now - killed, len(self.terms)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--voters", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=2000)
    ap.add_argument("--delay-min", type=float, default=0.1)
    ap.add_argument("--delay-max", type=float, default=0.3)
    ap.add_argument("--label", default="", help="written to bench/results/election_rounds-LABEL")
    args = ap.parse_args()
    seconds: list[float] = []
    rounds: list[int] = []
    for seed in range(args.seeds):
        took, n = Failover(seed, args.voters, (args.delay_min, args.delay_max)).failover()
        seconds.append(took)
        rounds.append(n)
    more = sum(1 for n in rounds if n > 1)
    figures = {
        "voters": args.voters,
        "seeds": args.seeds,
        "delay_seconds": [args.delay_min, args.delay_max],
        "new_leader_seconds": {
            "mean": round(statistics.mean(seconds), 3),
            "p50": round(pct(seconds, 0.5), 3),
            "p90": round(pct(seconds, 0.9), 3),
            "p99": round(pct(seconds, 0.99), 3),
            "max": round(max(seconds), 3),
        },
        "more_than_one_round": round(more / len(rounds), 4),
        "rounds_histogram": {str(k): rounds.count(k) for k in sorted(set(rounds))},
    }
    print(
        f"{args.voters} voters, leader killed, messages {args.delay_min}-{args.delay_max} s: "
        f"new leader p50 {figures['new_leader_seconds']['p50']} s, "
        f"p90 {figures['new_leader_seconds']['p90']} s, "
        f"p99 {figures['new_leader_seconds']['p99']} s; "
        f"more than one round in {100 * more / len(rounds):.1f}% of {args.seeds} failovers"
    )
    write_labelled_result("election_rounds", args.label, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
