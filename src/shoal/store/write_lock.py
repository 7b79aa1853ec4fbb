"""The store's write lock: asyncio.Lock's acquire and release, except that the callers of
``acquire(urgent=True)`` (a user's writes, through the control API) are let in before those
already waiting without it (the orchestrators' and the scheduler's batches, the dispatcher's
status reports).

Why: while a cluster changes at scale, the lock has a queue. Each batch holds it while its
proposal waits for room in flight (one raft round, 0.1-0.3 s at 1,000 nodes), and a user's
`docker service update` waited its turn behind every batch queued before it: 0.36-0.58 s
queued, then 0.1-0.28 s to commit (issue 15's fleet, SHOAL_SLOW_WRITE_LOG). A user's write
is rare and small: let in first, it waits for the holder only.

Waiters are woken as asyncio.Lock wakes them: one at a time, the first of the urgent queue if
any, else the first of the other; a waiter cancelled once woken passes the lock on."""

import asyncio
import collections


class WriteLock:
    def __init__(self) -> None:
        self._locked = False
        self._urgent: collections.deque[asyncio.Future[bool]] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[bool]] = collections.deque()

    def locked(self) -> bool:
        return self._locked

    async def acquire(self, urgent: bool = False) -> bool:
        if not self._locked and all(w.cancelled() for w in (*self._urgent, *self._waiters)):
            self._locked = True
            return True
        queue = self._urgent if urgent else self._waiters
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        queue.append(fut)
        try:
            try:
                await fut
            finally:
                queue.remove(fut)
        except asyncio.CancelledError:
            if not self._locked:
                self._wake_up_first()
            raise
        self._locked = True
        return True

    def release(self) -> None:
        if not self._locked:
            raise RuntimeError("Lock is not acquired.")
        self._locked = False
        self._wake_up_first()

    def _wake_up_first(self) -> None:
        """Wake the first waiter, urgent ones first (if it was woken already, it takes the
        lock when it runs: nobody else is woken)."""
        queue = self._urgent if self._urgent else self._waiters
        if not queue:
            return
        fut = queue[0]
        if not fut.done():
            fut.set_result(True)
