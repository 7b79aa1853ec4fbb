"""Rotating a manager's raft data key (DEK) while raft keeps running.

The steps, each durable before the next, so that a manager stopped anywhere resumes:

1. ``RaftKeys.start_rotation``: a pending DEK is saved beside the current one, and from then on
   every new entry and snapshot is sealed under it;
2. the entries already stored, and the snapshot, are sealed again under the pending DEK, a
   batch per transaction in a worker thread, raft's own writes going on between batches;
3. once nothing stored is under the old DEK, ``RaftKeys.finish_rotation`` makes the pending
   DEK current and forgets the old one; the WAL is emptied of the old key's pages.

A crash before 3 leaves a keys file with both DEKs, and a store partly under each: it reads
whole, and the next start resumes at 2 (``resume``). Swarmkit rotates the DEK in the same
way, and does so whenever the unlock key (the KEK wrapping the DEK) changes.
"""

import asyncio
import logging

from shoal.manager.consensus.raft_keys import RaftKeys
from shoal.raft.storage import SQLiteStorage

log = logging.getLogger(__name__)

BATCH = 256  # entries per transaction: short enough not to hold raft's writes up for long
PASSES = 3


class RotationIncomplete(Exception):
    """The old key could not be dropped: the rotation resumes on the manager's next start."""


class DataKeyRotation:
    def __init__(self, keys: RaftKeys, storage: SQLiteStorage, batch: int = BATCH) -> None:
        self.keys = keys
        self.storage = storage
        self.batch = batch
        self._lock = asyncio.Lock()
        self.rotations = 0  # completed, for status and tests

    @property
    def in_progress(self) -> bool:
        return self.keys.pending is not None

    async def rotate(self) -> None:
        """A new DEK, and everything stored sealed under it. A rotation asked for while one
        runs waits for it and then rotates again: the caller asked for a key newer than the
        moment it asked (as after an unlock key change)."""
        async with self._lock:
            await asyncio.to_thread(self.keys.start_rotation)
            await self._reencrypt_and_finish()

    async def resume(self) -> None:
        """Finish a rotation a previous run of this manager had started."""
        async with self._lock:
            if self.keys.pending is None:
                return
            # Loaded with a pending key, the keys already seal new writes under it.
            await self._reencrypt_and_finish()

    async def _reencrypt_and_finish(self) -> None:
        new_id = self.keys.cipher.write_key_id
        batches = 0
        for _ in range(PASSES):
            after: int | None = 0
            while after is not None:
                after = await asyncio.to_thread(self.storage.reencrypt_entries, after, self.batch)
                batches += after is not None
            await asyncio.to_thread(self.storage.reencrypt_snapshot)
            left = await asyncio.to_thread(self.storage.count_not_under_write_key)
            if left == 0:
                break
            # Raft writes under the new key from the start, so one pass leaves nothing behind;
            # go over the log again rather than drop a key something is still sealed under.
            log.warning("%d values still under the old raft key; going over the log again", left)
        else:
            raise RotationIncomplete(
                f"values still under the old raft key after {PASSES} passes; both keys kept"
            )
        await asyncio.to_thread(self.keys.finish_rotation)
        await asyncio.to_thread(self.storage.truncate_wal)
        self.rotations += 1
        log.info("raft data key rotated to %#x (%d batches)", new_id, batches)
