"""The leader's view of one member's log: how far it matches, what to send next, and how."""

from collections import deque
from dataclasses import dataclass, field

from shoal.raft.types import PeerStatus, ProgressState


@dataclass(slots=True)
class Progress:
    match: int = 0
    next: int = 1
    learner: bool = False
    state: ProgressState = ProgressState.PROBE
    # PROBE: an append is out and unanswered; wait for its answer or a heartbeat's.
    probe_sent: bool = False
    pending_snapshot: int = 0
    # REPLICATE: last index of each append not yet acknowledged, oldest first.
    inflight: deque[int] = field(default_factory=deque)
    # Heard from within the current check-quorum period.
    recent_active: bool = True
    ticks_since_heard: int = 0
    ticks_in_state: int = 0  # SNAPSHOT: since it was sent; REPLICATE: since match moved

    def become_probe(self) -> None:
        if self.state is ProgressState.SNAPSHOT:
            self.next = max(self.match + 1, self.pending_snapshot + 1)
        else:
            self.next = self.match + 1
        self._reset(ProgressState.PROBE)

    def become_replicate(self) -> None:
        self.next = self.match + 1
        self._reset(ProgressState.REPLICATE)

    def become_snapshot(self, index: int) -> None:
        self._reset(ProgressState.SNAPSHOT)
        self.pending_snapshot = index

    def _reset(self, state: ProgressState) -> None:
        self.state = state
        self.probe_sent = False
        self.pending_snapshot = 0
        self.inflight.clear()
        self.ticks_in_state = 0

    def paused(self, max_inflight: int) -> bool:
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return len(self.inflight) >= max_inflight
        return True

    def maybe_update(self, index: int) -> bool:
        """An append up to ``index`` was accepted; False if that is old news."""
        updated = False
        if self.match < index:
            self.match = index
            self.probe_sent = False
            self.ticks_in_state = 0
            updated = True
        self.next = max(self.next, index + 1)
        return updated

    def maybe_decrease_to(self, rejected: int, hint: int) -> bool:
        """An append after ``rejected`` was refused; the follower suggests probing after
        ``hint``. False if the refusal is stale."""
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, hint + 1), self.match + 1)
        self.probe_sent = False
        return True

    def sent(self, last: int | None) -> None:
        """An append was sent, ending at ``last`` (None if it carried no entries)."""
        if self.state is ProgressState.REPLICATE and last is not None:
            self.next = last + 1
            self.inflight.append(last)
        elif self.state is ProgressState.PROBE:
            self.probe_sent = True

    def free_inflight(self, index: int) -> None:
        while self.inflight and self.inflight[0] <= index:
            self.inflight.popleft()

    def status(self) -> PeerStatus:
        return PeerStatus(
            match=self.match,
            next=self.next,
            state=self.state,
            learner=self.learner,
            recent_active=self.recent_active,
            ticks_since_heard=self.ticks_since_heard,
        )
