"""Virtual time for a plan: it starts at the real time and moves only when the plan moves it,
to the next deadline someone sleeps until (an update's delay, a monitor period), so a plan of
a rolling update with minutes of delay is computed at once. A ``FakeClock`` (its sleepers,
``now``, ``sleep``) that starts at the real clock's monotonic reading too, and is moved by the
plan's loop from one deadline to the next rather than by a test's ``advance``."""

import datetime as dt
import heapq

from shoal.clock import FakeClock


class SimulatedClock(FakeClock):
    def __init__(self, start: dt.datetime, monotonic: float = 0.0) -> None:
        super().__init__(start)
        self._mono0 = monotonic

    def monotonic(self) -> float:
        return self._mono0 + self._t

    @property
    def elapsed(self) -> float:
        """Simulated seconds since the start."""
        return self._t

    def next_deadline(self) -> float | None:
        """Simulated seconds since the start at which the next sleeper wakes (None: nobody
        sleeps). Sleepers that were cancelled meanwhile are forgotten."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    def advance_to_next(self) -> bool:
        """Move to the next deadline and wake everyone sleeping until then; False if nobody
        sleeps. (Unlike ``advance`` it does not wait for the woken: the plan's loop runs them.)"""
        deadline = self.next_deadline()
        if deadline is None:
            return False
        self._t = max(self._t, deadline)
        while self._sleepers and self._sleepers[0][0] <= self._t:
            fut = heapq.heappop(self._sleepers)[2]
            if not fut.done():
                fut.set_result(None)
        return True
