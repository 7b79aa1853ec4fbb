"""Rotating a manager's raft data key while raft writes: the log reads whole at every moment,
the old key is dropped only once nothing is under it, and a manager killed mid-rotation
reopens its store and finishes the rotation."""

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from shoal.manager.consensus.raft_key_rotation import DataKeyRotation
from shoal.manager.consensus.raft_keys import RaftKeys
from shoal.raft.storage import SQLiteStorage
from shoal.raft.types import ConfState, Entry, EntryType, HardState, Snapshot

KEK = b"u" * 32
CONF = ConfState(frozenset({1}), frozenset())


def ents(lo: int, hi: int, term: int = 1) -> list[Entry]:
    return [Entry(i, term, EntryType.NORMAL, f"entry-{i}".encode() * 10) for i in range(lo, hi + 1)]


def stored_key_ids(raft_dir: Path) -> set[int | None]:
    db = sqlite3.connect(raft_dir / "raft.db")
    try:
        return {row[0] for row in db.execute("SELECT DISTINCT key_id FROM entries")}
    finally:
        db.close()


def open_store(d: Path, kek: bytes | None = None) -> tuple[RaftKeys, SQLiteStorage]:
    keys = RaftKeys.load_or_create(d / "raft-keys.json", kek)
    return keys, SQLiteStorage(d / "raft", cipher=keys.cipher)


async def test_rotation_while_raft_keeps_writing(tmp_path):
    keys, storage = open_store(tmp_path, KEK)
    old = keys.current
    storage.save(HardState(1, 1, 0), ents(1, 500))
    storage.save_snapshot(Snapshot(100, 1, CONF, b"state"), (50, 1))
    rotation = DataKeyRotation(keys, storage, batch=20)

    async def raft_writes() -> None:
        for i in range(501, 601):
            await asyncio.to_thread(storage.save, HardState(1, 1, i), ents(i, i))

    await asyncio.gather(rotation.rotate(), raft_writes())
    assert keys.pending is None and keys.current.id != old.id
    assert rotation.rotations == 1
    assert stored_key_ids(tmp_path / "raft") == {keys.current.id}
    assert storage.count_not_under_write_key() == 0
    st_ = storage.load()
    assert st_.entries == ents(51, 600) and st_.snapshot == Snapshot(100, 1, CONF, b"state")
    storage.close()
    # The keys file names only the new key, sealed as before; the store reads with it.
    reloaded, again = open_store(tmp_path, KEK)
    assert reloaded.current == keys.current and reloaded.pending is None
    assert reloaded.cipher.key_ids() == {keys.current.id}
    assert again.load() == st_
    again.close()


async def test_a_rotation_asked_for_during_one_rotates_again(tmp_path):
    keys, storage = open_store(tmp_path)
    storage.save(HardState(1, 1, 0), ents(1, 200))
    rotation = DataKeyRotation(keys, storage, batch=10)
    first = keys.current.id
    await asyncio.gather(rotation.rotate(), rotation.rotate())
    assert rotation.rotations == 2
    assert keys.current.id != first
    assert stored_key_ids(tmp_path / "raft") == {keys.current.id}
    storage.close()


async def test_a_rotation_stopped_between_steps_resumes(tmp_path):
    keys, storage = open_store(tmp_path, KEK)
    storage.save(HardState(1, 1, 0), ents(1, 100))
    storage.save_snapshot(Snapshot(40, 1, CONF, b"state"), (30, 1))
    expected = storage.load()
    old = keys.current
    pending = keys.start_rotation()
    storage.reencrypt_entries(0, 25)  # one batch, then the manager stops
    storage.close()

    keys, storage = open_store(tmp_path, KEK)
    assert keys.current == old and keys.pending == pending
    assert stored_key_ids(tmp_path / "raft") == {old.id, pending.id}
    assert storage.load() == expected
    await DataKeyRotation(keys, storage).resume()
    assert keys.current == pending and keys.pending is None
    assert stored_key_ids(tmp_path / "raft") == {pending.id}
    assert storage.load() == expected
    storage.close()
    await DataKeyRotation(*open_store(tmp_path, KEK)).resume()  # nothing to resume


async def test_reseal_then_rotate_under_a_new_unlock_key(tmp_path):
    keys, storage = open_store(tmp_path)
    storage.save(HardState(1, 1, 0), ents(1, 20))
    keys.reseal(KEK)
    await DataKeyRotation(keys, storage).rotate()
    storage.close()
    assert RaftKeys.is_sealed(tmp_path / "raft-keys.json")
    keys, storage = open_store(tmp_path, KEK)
    assert storage.load().entries == ents(1, 20)
    storage.close()


ROTATOR = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from shoal.manager.consensus.raft_key_rotation import DataKeyRotation
    from shoal.manager.consensus.raft_keys import RaftKeys
    from shoal.raft.storage import SQLiteStorage
    from shoal.raft.types import Entry, HardState

    d = Path(sys.argv[1])
    keys = RaftKeys.load_or_create(d / "raft-keys.json", b"u" * 32)
    s = SQLiteStorage(d / "raft", cipher=keys.cipher)
    s.save(HardState(1, 1, 0), [Entry(i, 1, data=b"x%d" % i) for i in range(1, 301)])
    rotation = DataKeyRotation(keys, s, batch=7)

    async def main():
        i = 300
        while True:
            await rotation.rotate()
            i += 1
            s.save(HardState(1, 1, i), [Entry(i, 1, data=b"x%d" % i)])
            print(i, flush=True)

    asyncio.run(main())
    """
)


def test_a_manager_killed_mid_rotation_reads_its_store_and_finishes(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3] / "src"))
    # Killed at different moments after a rotation began: before its pending key is saved,
    # between batches, in a batch, between the snapshot and dropping the old key.
    for round_, delay in enumerate([0.0, 0.004, 0.01, 0.02, 0.04]):
        d = tmp_path / f"r{round_}"
        proc = subprocess.Popen(
            [sys.executable, "-c", ROTATOR, str(d)], stdout=subprocess.PIPE, text=True, env=env
        )
        assert proc.stdout is not None
        acked = 0
        for line in proc.stdout:
            acked = int(line)
            if acked >= 302:
                break
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        keys, storage = open_store(d, KEK)
        st_ = storage.load()
        assert len(st_.entries) >= acked  # it went on writing after the last line read
        assert [e.data for e in st_.entries] == [b"x%d" % i for i in range(1, len(st_.entries) + 1)]
        asyncio.run(DataKeyRotation(keys, storage).resume())
        assert keys.pending is None
        assert stored_key_ids(d / "raft") == {keys.current.id}
        storage.close()
