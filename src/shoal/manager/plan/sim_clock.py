"""Virtual time for a plan: it starts at the real time and moves only when the plan moves it,
to the next deadline someone sleeps until (an update's delay, a monitor period), so a plan of
a rolling update with minutes of delay is computed at once."""

import asyncio
import datetime as dt
import heapq
import itertools


class SimulatedClock:
    def __init__(self, start: dt.datetime, monotonic: float = 0.0) -> None:
        self._wall0 = start
        self._mono0 = monotonic
        self._t = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> dt.datetime:
        return self._wall0 + dt.timedelta(seconds=self._t)

    def monotonic(self) -> float:
        return self._mono0 + self._t

    @property
    def elapsed(self) -> float:
        """Simulated seconds since the start."""
        return self._t

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._t + seconds, next(self._seq), fut))
        await fut

    def next_deadline(self) -> float | None:
        """Simulated seconds since the start at which the next sleeper wakes (None: nobody
        sleeps). Sleepers that were cancelled meanwhile are forgotten."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    def advance_to_next(self) -> bool:
        """Move to the next deadline and wake everyone sleeping until then; False if nobody
        sleeps."""
        deadline = self.next_deadline()
        if deadline is None:
            return False
        self._t = max(self._t, deadline)
        while self._sleepers and self._sleepers[0][0] <= self._t:
            fut = heapq.heappop(self._sleepers)[2]
            if not fut.done():
                fut.set_result(None)
        return True
