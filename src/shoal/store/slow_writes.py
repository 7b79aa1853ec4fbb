"""Slow writes, logged with where their time went: queued for the write lock, waiting for
room among the proposals in flight, or waiting for their proposal to commit.

A debug aid for the write path under load, off by default. Under a 1,000-node fleet the first
write after a leader kill took 0.7-3.5 s with nothing to say why (issue 15); each such write
says here which of those steps took it, beside raft's own line for the entry it went in (see
``shoal.raft.entry_times``). ``SHOAL_SLOW_WRITE_LOG=SECONDS`` turns both on in a daemon."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

SLOW_WRITE_ENV = "SHOAL_SLOW_WRITE_LOG"


def slow_write_threshold(environ: Mapping[str, str] = os.environ) -> float | None:
    """Seconds from which a write is logged, from ``SHOAL_SLOW_WRITE_LOG``; None (off) when
    it is unset, empty or not a positive number."""
    text = environ.get(SLOW_WRITE_ENV, "").strip()
    try:
        seconds = float(text) if text else 0.0
    except ValueError:
        return None
    return seconds if seconds > 0 else None


@dataclass
class WriteTimes:
    """When one store update reached each step (the store clock's monotonic seconds)."""

    started: float
    taken: float | None = None  # its function ran, in a proposal's group (None: never)
    built: float | None = None  # that proposal was built and handed on to be committed
    room_wait: float = 0.0  # its writer waited this long for the proposals in flight
    builder: bool = False  # its own writer built the proposal (else another writer did)
    group: int = 0  # updates in that proposal
    changes: int = 0  # changes in that proposal

    def describe(self, name: str, ended: float, outcome: str) -> str:
        """One log line: the write's total and each step's share."""
        total = ended - self.started
        if self.taken is None or self.built is None:
            return f"slow write: {total:.3f} s for {name}, {outcome} before it ran"
        who = "its own" if self.builder else "another writer's"
        room = f", {self.room_wait:.3f} s of it for room in flight" if self.builder else ""
        return (
            f"slow write: {total:.3f} s for {name} ({outcome}): "
            f"queued {self.taken - self.started:.3f} s{room}; "
            f"in {who} proposal of {self.group} updates, {self.changes} changes, "
            f"built in {self.built - self.taken:.3f} s; "
            f"committed and applied {ended - self.built:.3f} s after"
        )
