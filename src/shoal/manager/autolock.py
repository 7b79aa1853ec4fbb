"""Autolock on a manager: keep its keys sealed under the cluster's unlock key.

Every manager, leader or not, follows the Cluster object. When autolock is turned on or off,
or the unlock key is rotated, it re-seals its keys at rest (the node's TLS key and its raft
data keys) under the new key-encryption key (KEK), or unseals them when autolock is off. A
manager that was down meanwhile catches up when it is unlocked (with the key it was locked
under) and reads the cluster again.

Each change also rotates the raft data key (DEK): the DEK that the previous KEK (or, autolock
off before, anyone with the disk) could open then protects nothing any more. ``reseal`` does
both: this module only decides when.
"""

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable

from shoal.api.objects import Cluster
from shoal.clock import Clock
from shoal.store import MemoryStore, Subscription

log = logging.getLogger(__name__)

# A snapshot installed from the leader replaces the store without events: look again now
# and then. Also the pause before trying a failed re-seal again.
RECHECK = 5.0


def same_key(a: bytes | None, b: bytes | None) -> bool:
    """Whether two KEKs (None: none) are the same, in constant time."""
    if a is None or b is None:
        return a is b
    return hmac.compare_digest(a, b)


def needs_reseal(current: bytes | None, desired: bytes | None) -> bool:
    """Whether keys sealed under ``current`` (None: not sealed) must be sealed again for a
    cluster that asks for ``desired``."""
    return not same_key(current, desired)


Reseal = Callable[[bytes | None], Awaitable[None]]


class AutolockFollower:
    def __init__(
        self,
        store: MemoryStore,
        clock: Clock,
        kek: bytes | None,
        reseal: Reseal,
        settled: bool = True,
    ) -> None:
        """``kek``: what this manager's keys are sealed under now (None: not sealed);
        ``settled`` False when they are not all under the same one (a manager stopped while
        it moved them): then they are sealed again whatever the cluster asks. ``reseal(kek)``
        seals every key this manager keeps under ``kek`` (None: unseals) and rotates its raft
        data key."""
        self.store = store
        self.clock = clock
        self.kek = kek
        self.settled = settled
        self._reseal = reseal

    async def follow(self, cluster: Cluster) -> None:
        """Seal as ``cluster`` says (raises what ``reseal`` raises)."""
        desired = cluster.manager_unlock_key()
        if self.settled and not needs_reseal(self.kek, desired):
            return
        await self._reseal(desired)
        self.kek = desired
        self.settled = True
        log.info("manager keys %s", "sealed under the unlock key" if desired else "unsealed")

    async def run(self) -> None:
        with self.store.watch(kinds={"cluster"}) as sub:
            while True:
                try:
                    cluster = self.store.view().cluster()
                    if cluster is not None:
                        await self.follow(cluster)
                except Exception:
                    # Never given up: a manager that stops following would keep its keys
                    # under a key the cluster no longer has.
                    log.exception("could not re-seal this manager's keys; trying again")
                if not await self._next_change(sub):
                    return

    async def _next_change(self, sub: Subscription) -> bool:
        """Wait for a change, or RECHECK seconds; False once the store closed."""
        get = asyncio.ensure_future(sub.get())
        pause = asyncio.ensure_future(self.clock.sleep(RECHECK))
        try:
            await asyncio.wait({get, pause}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            pause.cancel()
            if not get.done():
                get.cancel()
        if not get.done() or get.cancelled():
            return True  # the pause ended first (a cancelled get is done only later)
        if isinstance(get.exception(), StopAsyncIteration):
            return False
        # Every commit wakes a watcher: one look at the cluster answers all that queued.
        while sub.get_nowait() is not None:
            pass
        return True
