"""A manager's replica keeps its raft store encrypted from its first write, rotates its data
key while the store is written, and restarts from what it stored (real SQLite, a real raft
node and store, one manager)."""

import asyncio
import sqlite3
from pathlib import Path

from shoal.api.ids import new_id
from shoal.api.objects import Service
from shoal.api.specs import ServiceSpec
from shoal.clock import SystemClock
from shoal.manager.consensus.raft_keys import RaftKeys
from shoal.manager.consensus.replica import Replica
from shoal.raft.types import RaftConfig
from shoal.rpc import Transport
from shoal.store import MemoryStore

MARKER = "marker-3f9a1c77e2"


def replica(state_dir: Path) -> tuple[Replica, MemoryStore]:
    clock = SystemClock()
    store = MemoryStore(clock=clock)
    r = Replica(
        store,
        state_dir,
        "node1",
        "127.0.0.1:1",
        Transport(node_id="node1"),
        clock,
        config=RaftConfig(snapshot_interval=40, keep_entries=5),
        tick=0.05,
    )
    return r, store


async def create(store: MemoryStore, name: str) -> None:
    svc = Service(ID=new_id(), Spec=ServiceSpec(Name=name))
    await store.update(lambda tx: tx.create(svc))


def files_holding(directory: Path, needle: bytes) -> list[str]:
    return [
        str(p) for p in sorted(directory.rglob("*")) if p.is_file() and needle in p.read_bytes()
    ]


def key_ids(state_dir: Path) -> set[int]:
    db = sqlite3.connect(state_dir / "raft" / "raft.db")
    try:
        return {row[0] for row in db.execute("SELECT DISTINCT key_id FROM entries")}
    finally:
        db.close()


async def test_replica_store_is_encrypted_rotates_and_restarts(tmp_path):
    r, store = replica(tmp_path)
    await r.bootstrap()
    for i in range(60):  # past the snapshot interval: a snapshot and a compacted log
        await create(store, f"{MARKER}-{i}")
    assert list((tmp_path / "raft" / "snapshots").iterdir())
    assert files_holding(tmp_path, MARKER.encode()) == []
    keys = RaftKeys.load(tmp_path / "raft-keys.json", None)
    assert key_ids(tmp_path) == {keys.current.id}

    async def writes() -> None:
        for i in range(60, 90):
            await create(store, f"{MARKER}-{i}")

    await asyncio.gather(r.rotate_data_key(), writes())
    rotated = RaftKeys.load(tmp_path / "raft-keys.json", None)
    assert rotated.current.id != keys.current.id and rotated.pending is None
    assert key_ids(tmp_path) == {rotated.current.id}
    assert files_holding(tmp_path, MARKER.encode()) == []
    names = {s.Spec.Name for s in store.view().services()}
    await r.stop()

    again, store2 = replica(tmp_path)
    await again.restart()
    try:
        assert {s.Spec.Name for s in store2.view().services()} == names
        assert len(names) == 90
    finally:
        await again.stop()


async def test_a_restart_finishes_a_rotation_the_manager_had_begun(tmp_path):
    r, store = replica(tmp_path)
    await r.bootstrap()
    for i in range(10):
        await create(store, f"{MARKER}-{i}")
    await r.stop()
    keys = RaftKeys.load(tmp_path / "raft-keys.json", None)
    pending = keys.start_rotation()  # and the manager stopped there

    again, store2 = replica(tmp_path)
    await again.restart()
    try:
        assert len(store2.view().services()) == 10
        await _until(lambda: key_ids(tmp_path) == {pending.id})
        await _until(lambda: RaftKeys.load(tmp_path / "raft-keys.json", None).pending is None)
        assert RaftKeys.load(tmp_path / "raft-keys.json", None).current == pending
    finally:
        await again.stop()


async def _until(check, seconds: float = 10.0) -> None:
    """Poll files on disk (nothing to wait on): ``check`` true within ``seconds``."""
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {check}")
