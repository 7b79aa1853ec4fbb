"""How many of raft's logical ticks are due each time the ticker wakes. Pure: the caller
passes the time.

Raft counts time in ticks (election timeout 10-20, heartbeat 1, of 100 ms each). The ticker
sleeps one interval and ticks; on a busy event loop each sleep ends late, so ticks came
slower than the clock: with wake-ups 200-300 ms late, a follower whose leader died waited 10
to 20 of them, 4-6 s instead of 1-2 before starting an election (issue 15: the 1,000-node
fleet's leader kill took 6.4 s to elect). Now a late wake-up ticks for the intervals that
passed, so raft's timeouts follow the clock through a busy loop.

But not for a long hold: a node whose loop was held for seconds has not read the messages
that came meanwhile (a follower its leader's heartbeats, a leader its followers' answers),
and catching up on every tick at once would call an election, or a leader's step-down,
before reading them. At most MAX_TICKS_PER_WAKE are due at once; time beyond is dropped.
"""

MAX_TICKS_PER_WAKE = 3


class TickPacer:
    def __init__(self, interval: float, now: float, cap: int = MAX_TICKS_PER_WAKE) -> None:
        self.interval = interval
        self.cap = cap
        self._last = now  # when the last tick was due

    def due(self, now: float) -> int:
        """Ticks to run at ``now`` (at least one: the ticker slept an interval)."""
        passed = int((now - self._last) / self.interval + 1e-9)
        if passed > self.cap:
            self._last = now
            return self.cap
        passed = max(1, passed)
        self._last += passed * self.interval
        return passed
