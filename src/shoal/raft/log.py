"""The in-memory Raft log of one node: a snapshot, then entries ``offset+1 .. last``.

It mirrors what is on disk plus entries not yet persisted (after ``stabled``), and tracks
how far entries are committed and applied. Compaction keeps some entries behind the snapshot
so a slow follower can catch up from the log instead of needing the whole snapshot.
"""

from shoal.raft.types import Entry, PersistentState, Snapshot


class LogCorrupted(AssertionError):
    """A Raft invariant would be broken (a committed entry changed, a commit past the log)."""


class RaftLog:
    def __init__(self, state: PersistentState) -> None:
        self.snapshot: Snapshot | None = state.snapshot
        self.offset = state.offset
        self.offset_term = state.offset_term
        self.entries: list[Entry] = list(state.entries)
        snap_index = state.snapshot.index if state.snapshot else 0
        self.committed = max(state.hard_state.commit, snap_index)
        self.applied = snap_index
        self.stabled = self.last_index()
        # A snapshot received from the leader, to hand to the driver in the next Ready.
        self.pending_snapshot: Snapshot | None = None
        if self.committed > self.last_index():
            raise LogCorrupted(f"commit {self.committed} beyond last index {self.last_index()}")

    def first_index(self) -> int:
        return self.offset + 1

    def last_index(self) -> int:
        return self.offset + len(self.entries)

    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.offset_term

    def term(self, index: int) -> int | None:
        """The term of the entry at ``index``, or None if it is compacted away or missing."""
        if index == self.offset:
            return self.offset_term
        if index < self.offset:
            if self.snapshot is not None and index == self.snapshot.index:
                return self.snapshot.term
            return None
        if index > self.last_index():
            return None
        return self.entries[index - self.offset - 1].term

    def entry(self, index: int) -> Entry:
        return self.entries[index - self.offset - 1]

    def match_term(self, index: int, term: int) -> bool:
        return self.term(index) == term

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Is a log ending at (last_index, last_term) at least as up to date as ours (§5.4.1)?"""
        mine = self.last_term()
        return last_term > mine or (last_term == mine and last_index >= self.last_index())

    def slice(self, lo: int, hi: int, max_bytes: int) -> list[Entry]:
        """Entries lo..hi-1 (lo > offset), stopping before max_bytes of data but always
        returning at least one entry if any is asked for."""
        if lo <= self.offset:
            raise IndexError(f"entry {lo} is compacted (offset {self.offset})")
        hi = min(hi, self.last_index() + 1)
        out: list[Entry] = []
        size = 0
        for i in range(lo - self.offset - 1, hi - self.offset - 1):
            e = self.entries[i]
            size += len(e.data) + 32
            if out and size > max_bytes:
                break
            out.append(e)
        return out

    def find_conflict(self, entries: list[Entry]) -> int:
        """The index of the first of ``entries`` that is not already in the log with the same
        term (a conflict, or simply new), or 0 if all are present."""
        for e in entries:
            if not self.match_term(e.index, e.term):
                return e.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The largest index <= ``index`` whose term is <= ``term``, and that term: where a
        leader whose log has ``term`` at ``index`` should probe next (fast backtracking)."""
        while index > self.offset:
            t = self.term(index)
            if t is not None and t <= term:
                return index, t
            index -= 1
        return index, (self.term(index) or 0)

    def append(self, entries: list[Entry]) -> None:
        """Append, first truncating the log at ``entries[0].index`` if it goes that far."""
        if not entries:
            return
        after = entries[0].index - 1
        if after < self.committed:
            raise LogCorrupted(f"truncating at {after + 1} below commit {self.committed}")
        if after > self.last_index():
            raise LogCorrupted(f"gap: appending {after + 1} after {self.last_index()}")
        del self.entries[after - self.offset :]
        self.stabled = min(self.stabled, after)
        self.entries.extend(entries)

    def maybe_append(
        self, prev_index: int, prev_term: int, commit: int, entries: list[Entry]
    ) -> int | None:
        """A follower's half of AppendEntries: None if the log does not contain
        (prev_index, prev_term); else the index of the last new entry."""
        if not self.match_term(prev_index, prev_term):
            return None
        last_new = prev_index + len(entries)
        conflict = self.find_conflict(entries)
        if conflict:
            if conflict <= self.committed:
                raise LogCorrupted(f"entry {conflict} conflicts with a committed entry")
            self.append(entries[conflict - prev_index - 1 :])
        self.commit_to(min(commit, last_new))
        return last_new

    def commit_to(self, index: int) -> None:
        if index > self.committed:
            if index > self.last_index():
                raise LogCorrupted(f"commit {index} beyond last index {self.last_index()}")
            self.committed = index

    def unstable_entries(self) -> list[Entry]:
        start = max(self.stabled, self.offset)
        return self.entries[start - self.offset :]

    def stable_to(self, index: int, term: int) -> None:
        # Entries may have been replaced since they were handed out to be persisted; only a
        # matching term proves the persisted entry is the one still in the log.
        if self.term(index) == term:
            self.stabled = max(self.stabled, index)

    def committed_to_apply(self, max_bytes: int) -> list[Entry]:
        lo = max(self.applied + 1, self.first_index())
        if lo > self.committed:
            return []
        return self.slice(lo, self.committed + 1, max_bytes)

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the whole log by a snapshot received from the leader."""
        self.snapshot = snapshot
        self.pending_snapshot = snapshot
        self.offset = snapshot.index
        self.offset_term = snapshot.term
        self.entries = []
        self.committed = snapshot.index
        self.applied = snapshot.index
        self.stabled = snapshot.index

    def compact(self, index: int) -> None:
        """Forget entries up to ``index`` (which must be applied and covered by the snapshot)."""
        if index <= self.offset:
            return
        snap_index = self.snapshot.index if self.snapshot else 0
        if index > self.applied or index > snap_index:
            raise ValueError(
                f"cannot compact to {index}: applied {self.applied}, snap {snap_index}"
            )
        term = self.term(index)
        assert term is not None
        del self.entries[: index - self.offset]
        self.offset = index
        self.offset_term = term
