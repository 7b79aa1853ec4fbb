"""Heartbeats a thread sends for a leader whose event loop is held up (issue 15).

A new leader of a large fleet takes a thousand agents' reconnections at once: its event loop
can be held for seconds (TLS handshakes, sessions, status reports), and the raft driver's
ticks, hence its heartbeats, wait behind that work. An election timeout (1 to 2 s) later the
followers elect someone else, every agent reconnects there, and the same happens again.

The raft driver publishes, after each of its turns, the little a heartbeat needs: the term,
and for each follower the commit index it may be told, ``min(match, committed)`` as
``Core._broadcast_heartbeat`` computes it. A thread of its own (the wiring's; see
``manager.consensus.stand_in_sender``) sleeps in ``wait`` until heartbeats may be due, then
sends what ``due`` returns. Only while the driver is late (no turn for ``late_after`` seconds: it beats for
itself otherwise), and only for ``give_up_after`` seconds past the driver's last turn: a
leader whose loop is wedged rather than busy must still be replaced, as a dead one is. The
driver publishes None the moment this node stops leading (or stops): nothing more is sent.

A follower cannot tell these heartbeats from the driver's: same message, same term checks
(a stale term gets the usual answer that makes the old leader step down). Their answers come
back through the normal path, to the driver, once its loop turns again.

Time here is the monotonic clock of the process, not the injectable clock: what is measured
is how long the real event loop was held, which a fake clock would not see (tests inject a
function of their own).
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from shoal.raft.types import Message, MessageType


@dataclass(frozen=True, slots=True)
class LeaderView:
    """What a heartbeat needs of this leader, as of the driver's last turn."""

    leader: int
    term: int
    commits: tuple[tuple[int, int], ...]  # (follower, the commit index it may be told)


class Mode(StrEnum):
    IDLE = "idle"  # not leading, or the driver turns: nothing to do
    STANDING_IN = "standing-in"  # the driver is late: heartbeats are sent for it
    GAVE_UP = "gave-up"  # the driver has not turned for too long: the leader is let go


class StandInHeartbeats:
    """Thread-safe: ``publish`` from the event loop, ``due`` from the sending thread."""

    def __init__(
        self,
        interval: float,
        late_after: float,
        give_up_after: float,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.late_after = late_after
        self.give_up_after = give_up_after
        self._now = now
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # leadership began, or stopped
        self._view: LeaderView | None = None
        self._turned_at = 0.0
        self._sent_at: float | None = None
        self._stopped = False
        self.sent = 0  # heartbeats handed out so far

    def publish(self, view: LeaderView | None) -> None:
        """The driver turned: ``view`` if this node leads (with its term on disk), else None."""
        with self._lock:
            if self._stopped:
                return
            began = view is not None and self._view is None
            self._view = view
            self._turned_at = self._now()
            self._sent_at = None
            if began:
                self._changed.notify_all()

    def stop(self) -> None:
        """The node stops: nothing is ever sent again."""
        with self._lock:
            self._stopped = True
            self._view = None
            self._changed.notify_all()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def mode(self) -> Mode:
        with self._lock:
            return self._mode(self._now())

    def silence(self) -> float:
        """Seconds since the driver last turned (0 when this node does not lead)."""
        with self._lock:
            return 0.0 if self._view is None else self._now() - self._turned_at

    def next_due(self) -> float | None:
        """Seconds until heartbeats may be due; None: not before this node leads."""
        with self._lock:
            return self._next_due(self._now())

    def wait(self) -> None:
        """Block the sending thread until heartbeats may be due: not at all while this node
        follows (until it leads, or stops), about once per ``late_after`` while the driver
        turns (each turn moves the time on), once per ``interval`` while standing in. A
        thread that polled would take the interpreter lock from the loop 20 times a second
        on every manager for nothing."""
        with self._changed:
            delay = self._next_due(self._now())
            if delay is None or delay > 0:
                self._changed.wait(delay)

    def _next_due(self, now: float) -> float | None:
        if self._stopped:
            return 0.0
        if self._view is None:
            return None
        mode = self._mode(now)
        if mode is Mode.IDLE:
            return self._turned_at + self.late_after - now
        if mode is Mode.STANDING_IN:
            return 0.0 if self._sent_at is None else max(0.0, self._sent_at + self.interval - now)
        return self.late_after  # given up: nothing until the driver turns; look now and then

    def _mode(self, now: float) -> Mode:
        if self._view is None:
            return Mode.IDLE
        # (Deadlines compared as ``_next_due`` computes them, so that the two agree.)
        if now > self._turned_at + self.give_up_after:
            return Mode.GAVE_UP
        if now >= self._turned_at + self.late_after:
            return Mode.STANDING_IN
        return Mode.IDLE

    def due(self) -> list[Message]:
        """The heartbeats to send now: one per follower, at most once per ``interval``, while
        the driver is late but not given up on."""
        with self._lock:
            now = self._now()
            view = self._view
            if view is None or self._mode(now) is not Mode.STANDING_IN:
                return []
            if self._sent_at is not None and now < self._sent_at + self.interval:
                return []
            self._sent_at = now
            beats = [
                Message(MessageType.HEARTBEAT, to=peer, from_=view.leader, term=view.term, commit=c)
                for peer, c in view.commits
            ]
            self.sent += len(beats)
            return beats
