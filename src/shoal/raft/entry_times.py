"""When a proposed entry reached each step of a commit on its leader: a debug aid for the
write path under load, off by default (see ``shoal.store.slow_writes``, whose writes these
entries carry)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EntryTimes:
    """The clock's monotonic seconds at each step of one entry's commit on its leader."""

    submitted: float  # handed to the node
    appended: float  # appended to the leader's log (the node's loop took it from its inbox)
    sent: float = 0.0  # written to the leader's disk and sent to the followers (0: not yet)
    committed: float = 0.0  # the start of the Ready that said it was committed

    def describe(self, index: int, applied: float) -> str:
        """One log line: the entry's total and each step's share."""
        sent = self.sent or self.committed
        return (
            f"raft: entry {index} applied {applied - self.submitted:.3f} s after it was "
            f"submitted: {self.appended - self.submitted:.3f} s to enter the log, "
            f"{sent - self.appended:.3f} s until written and sent, "
            f"{self.committed - sent:.3f} s until committed, "
            f"{applied - self.committed:.3f} s until applied"
        )
