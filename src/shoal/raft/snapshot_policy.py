"""When the raft driver snapshots its state machine (pure bookkeeping, no I/O).

Two rules, each against the entries applied since the last snapshot (its "tail"):

- **by size** (while writes go on): every ``snapshot_interval`` entries, or once the tail
  holds ``snapshot_bytes`` or as many bytes as the last snapshot, whichever is more. Entries
  stay in memory until a snapshot, so the log held stays near the state's own size, and
  snapshotting costs no more than writing the entries.
- **once writes have settled**: a tail of at least ``settled_snapshot_bytes``, or an eighth
  of the last snapshot, whichever is more, and under a 64th of that tail applied over the
  last ``settle_ticks`` ticks. A manager that restarts replays its tail entry by entry, and
  the size rule lets that tail grow as large as the whole state: after the fleet's create
  (100,000 tasks) a restarted manager spent 7 s restoring its snapshot, then 10 s replaying
  a tail as large (issue 15, fleet-1000-s29-st2). Snapshotting once a burst is over costs
  one snapshot per burst, when the manager has the time for it.
"""

from collections import deque

from shoal.raft.types import RaftConfig

# Writes have settled when the bytes applied over the last ``settle_ticks`` are under
# this share of the tail.
SETTLED_SHARE = 64
# The settled rule waits for a tail of at least this share of the last snapshot: a smaller
# one replays in a small part of the time the snapshot takes to restore.
TAIL_SHARE = 8


class SnapshotPolicy:
    def __init__(self, config: RaftConfig) -> None:
        self.config = config
        self.index = 0  # the last snapshot's index (0: none)
        self.size = 0  # and its size in bytes
        self.tail_bytes = 0  # bytes of the entries applied since it
        self._applied_bytes = 0  # bytes of every entry applied, ever: the window's counter
        self._window: deque[int] = deque(maxlen=config.settle_ticks + 1)

    def snapshotted(self, index: int, size: int) -> None:
        """A snapshot of the state at ``index`` (``size`` bytes) was taken, installed from a
        leader or loaded at start-up."""
        self.index = index
        self.size = size
        self.tail_bytes = 0

    def applied(self, nbytes: int) -> None:
        """An entry of ``nbytes`` bytes of data was applied."""
        self.tail_bytes += nbytes
        self._applied_bytes += nbytes

    def tick(self) -> None:
        self._window.append(self._applied_bytes)

    def due(self, applied: int) -> str | None:
        """Why to snapshot now, the state machine having applied up to ``applied`` (None:
        not now)."""
        if applied <= self.index:
            return None
        cfg = self.config
        if applied - self.index >= cfg.snapshot_interval:
            return f"{cfg.snapshot_interval} entries"
        if self.tail_bytes >= max(cfg.snapshot_bytes, self.size):
            return "size"
        return "writes settled" if self._settled() else None

    def _settled(self) -> bool:
        if self.config.settle_ticks <= 0 or len(self._window) <= self.config.settle_ticks:
            return False  # off, or not a whole window seen yet
        if self.tail_bytes < max(self.config.settled_snapshot_bytes, self.size // TAIL_SHARE):
            return False
        recent = self._applied_bytes - self._window[0]
        return recent * SETTLED_SHARE <= self.tail_bytes
