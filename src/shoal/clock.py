"""Time as an injectable dependency, so that logic with timeouts is tested without sleeping.

Components take a ``Clock``; daemons use ``SystemClock``; tests use ``FakeClock`` and move
time forward with ``advance``.
"""

import asyncio
import datetime as dt
import heapq
import itertools
import time
import weakref
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """Wall-clock time (UTC), for timestamps users see."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for deadlines and intervals."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that only moves when told to. ``sleep`` waits until ``advance`` passes its
    deadline; sleepers wake in deadline order."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._wall0 = start or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        self._t = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> dt.datetime:
        return self._wall0 + dt.timedelta(seconds=self._t)

    def monotonic(self) -> float:
        return self._t

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._t + seconds, next(self._seq), fut))
        await fut

    @property
    def sleepers(self) -> int:
        return sum(1 for _, _, f in self._sleepers if not f.done())

    def hold(self, seconds: float) -> None:
        """Time passes while the event loop is held: it moves on and nobody wakes; the
        next ``advance`` wakes every sleeper whose deadline passed meanwhile, late."""
        self._t += seconds

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each sleeper whose deadline passes, in order, and letting
        the woken tasks run before time moves on."""
        target = self._t + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, fut = heapq.heappop(self._sleepers)
            self._t = max(self._t, deadline)
            if not fut.done():
                fut.set_result(None)
                for _ in range(5):
                    await asyncio.sleep(0)
        self._t = target
        for _ in range(5):
            await asyncio.sleep(0)


async def sleep_unless(clock: Clock, seconds: float, event: asyncio.Event) -> None:
    """Sleep ``seconds`` on ``clock``, or less if ``event`` is set meanwhile (it stays set:
    the caller clears it once it has acted on it)."""
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    waker = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        waker.cancel()
        await asyncio.gather(sleeper, waker, return_exceptions=True)


# Seconds of work a long stretch on the event loop does between two turns of the loop (issue
# 15: work that held a manager's loop for seconds kept raft's heartbeats waiting behind it).
LOOP_SLICE = 0.02


class LoopTurns:
    """A turn of the event loop once every ``LOOP_SLICE`` of work: ``await turns.between()``
    after each step, or ``due()``/``restart()`` around a pause of one's own. Work time comes
    from the performance counter, not the injectable clock: it measures how long this code
    held the loop, which a fake clock would not see."""

    __slots__ = ("_started",)

    def __init__(self) -> None:
        self._started = time.perf_counter()

    def due(self) -> bool:
        return time.perf_counter() - self._started >= LOOP_SLICE

    def restart(self) -> None:
        self._started = time.perf_counter()

    async def between(self) -> None:
        if self.due():
            await asyncio.sleep(0)
            self.restart()


class _BackgroundShare:
    """A loop's background workers: the token one holds across its pause, and how many are
    pausing or waiting for it."""

    __slots__ = ("pausing", "token")

    def __init__(self) -> None:
        self.token = asyncio.Lock()
        self.pausing = 0


_BACKGROUND: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _BackgroundShare]" = (
    weakref.WeakKeyDictionary()
)


def background_workers_pausing() -> int:
    """How many background workers of the running loop are between two of their slices
    (work not done yet, though none may be running this turn)."""
    share = _BACKGROUND.get(asyncio.get_running_loop())
    return share.pausing if share is not None else 0


class BackgroundTurns(LoopTurns):
    """``LoopTurns`` for background work (a reconciliation pass, a new leader's first read of
    the store): background workers take their slices one at a time, each turn of the loop
    running at most one of them besides everything else.

    With plain ``LoopTurns``, every worker that yields runs its next slice in the same turn:
    a new leader's orchestrators, scheduler, allocator, task reaper and constraint enforcer
    each read 100,000 tasks at once, so each turn of its loop took 0.4-0.5 s, and a raft
    commit, which needs several turns, waited 2.5-3.9 s; the first write accepted after a
    leader kill waited with it (issue 15). Taking turns, the workers do the same work in the
    same total time (the loop's CPU is what bounds them), while raft, the dispatcher and the
    API are served between every two slices. The token is held only across the pause itself,
    never across other awaits, so a worker waiting on anything else holds back no other."""

    __slots__ = ()

    async def between(self) -> None:
        if self.due():
            loop = asyncio.get_running_loop()
            share = _BACKGROUND.get(loop)
            if share is None:
                share = _BACKGROUND[loop] = _BackgroundShare()
            share.pausing += 1
            try:
                async with share.token:
                    await asyncio.sleep(0)
            finally:
                share.pausing -= 1
            self.restart()
