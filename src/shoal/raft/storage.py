"""Durable raft state in a directory: hard state and log entries in SQLite, snapshots as files.

Why SQLite: one file with atomic multi-row transactions, so a Ready's hard state, truncation
and new entries land together or not at all; crash recovery (the WAL) is SQLite's problem,
well tested, and in the standard library. WAL mode makes each commit one sequential append
plus one fsync (synchronous=FULL), with no rollback journal to sync as well. Snapshots can be
large and are written once, so they go to their own files (write, fsync, rename, fsync the
directory): the database only names the current one, and a snapshot file the database does
not name (a crash between the two writes) is ignored and removed on the next open.

``SQLiteStorage`` is blocking; ``AsyncStorage`` runs it in a thread for asyncio.
``MemoryStorage`` keeps the same contract in memory for tests and the simulation: what a
``save`` returned from is exactly what ``load`` gives back.
"""

import asyncio
import os
import sqlite3
import struct
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from shoal.raft import codec
from shoal.raft.types import Entry, EntryType, HardState, PersistentState, Snapshot

T = TypeVar("T")

_SNAP_MAGIC = b"SHOALSNP"
_SNAP_HEADER = struct.Struct("!8sIQ")  # magic, crc32 of body, body length


class StorageCorrupted(Exception):
    pass


class Storage(Protocol):
    def load(self) -> PersistentState: ...

    def save(
        self, hard_state: HardState | None, entries: list[Entry], snapshot: Snapshot | None = None
    ) -> None:
        """Durably write one Ready: first ``snapshot`` (replacing the whole log), then
        ``entries`` (replacing stored entries from ``entries[0].index`` on), then
        ``hard_state``. All or nothing."""
        ...

    def save_snapshot(self, snapshot: Snapshot, offset: tuple[int, int]) -> None:
        """Durably record a snapshot taken locally and drop entries up to ``offset`` (index,
        term), which becomes the start of the stored log."""
        ...

    def close(self) -> None: ...


class MemoryStorage:
    def __init__(self, state: PersistentState | None = None) -> None:
        self._state = PersistentState()
        if state is not None:
            self._state = _copy(state)

    def load(self) -> PersistentState:
        return _copy(self._state)

    def save(
        self, hard_state: HardState | None, entries: list[Entry], snapshot: Snapshot | None = None
    ) -> None:
        st = self._state
        if snapshot is not None:
            st.snapshot = snapshot
            st.offset, st.offset_term = snapshot.index, snapshot.term
            st.entries = []
        if entries:
            first = entries[0].index
            if first <= st.offset or first > st.offset + len(st.entries) + 1:
                raise StorageCorrupted(f"entries from {first} do not follow the log")
            del st.entries[first - st.offset - 1 :]
            st.entries.extend(entries)
        if hard_state is not None:
            st.hard_state = hard_state

    def save_snapshot(self, snapshot: Snapshot, offset: tuple[int, int]) -> None:
        st = self._state
        st.snapshot = snapshot
        index, term = offset
        if index > st.offset:
            del st.entries[: index - st.offset]
            st.offset, st.offset_term = index, term

    def close(self) -> None:
        pass


def _copy(s: PersistentState) -> PersistentState:
    return PersistentState(s.hard_state, s.snapshot, s.offset, s.offset_term, list(s.entries))


class SQLiteStorage:
    def __init__(self, directory: Path | str, synchronous: str = "FULL") -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.snap_dir = self.dir / "snapshots"
        self.snap_dir.mkdir(exist_ok=True, mode=0o700)
        self._lock = threading.Lock()
        db_path = self.dir / "raft.db"
        # The log holds the cluster's secrets (the root CA key among them): owner only.
        # SQLite gives its -wal and -shm files the database file's mode.
        os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(db_path, 0o600)
        self._db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        if synchronous not in ("FULL", "NORMAL", "OFF", "EXTRA"):
            raise ValueError(f"synchronous={synchronous}")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS entries ("
            " idx INTEGER PRIMARY KEY, term INTEGER NOT NULL,"
            " type INTEGER NOT NULL, data BLOB NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY, name TEXT)")

    # --- reading ------------------------------------------------------------------------------

    def load(self) -> PersistentState:
        with self._lock:
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            row = self._db.execute("SELECT name FROM snapshot WHERE id = 1").fetchone()
            snapshot = None
            if row is not None:
                snapshot = self._read_snapshot(self.snap_dir / row[0])
            self._remove_other_snapshots(row[0] if row else None)
            offset = meta.get("offset", 0)
            rows = self._db.execute(
                "SELECT idx, term, type, data FROM entries WHERE idx > ? ORDER BY idx", (offset,)
            ).fetchall()
        entries = [Entry(i, t, EntryType(k), bytes(d)) for i, t, k, d in rows]
        for n, e in enumerate(entries):
            if e.index != offset + 1 + n:
                raise StorageCorrupted(f"log has a gap before entry {e.index}")
        hs = HardState(meta.get("term", 0), meta.get("vote", 0), meta.get("commit", 0))
        return PersistentState(hs, snapshot, offset, meta.get("offset_term", 0), entries)

    def _read_snapshot(self, path: Path) -> Snapshot:
        try:
            raw = path.read_bytes()
        except FileNotFoundError as err:
            raise StorageCorrupted(f"snapshot {path} is missing") from err
        if len(raw) < _SNAP_HEADER.size:
            raise StorageCorrupted(f"snapshot {path} is truncated")
        magic, crc, size = _SNAP_HEADER.unpack_from(raw, 0)
        body = raw[_SNAP_HEADER.size :]
        if magic != _SNAP_MAGIC or size != len(body) or zlib.crc32(body) != crc:
            raise StorageCorrupted(f"snapshot {path} is corrupted")
        return codec.decode_snapshot(body)

    # --- writing ------------------------------------------------------------------------------

    def save(
        self, hard_state: HardState | None, entries: list[Entry], snapshot: Snapshot | None = None
    ) -> None:
        if hard_state is None and not entries and snapshot is None:
            return
        with self._lock:
            name = self._write_snapshot_file(snapshot) if snapshot is not None else None
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                if snapshot is not None:
                    db.execute("INSERT OR REPLACE INTO snapshot (id, name) VALUES (1, ?)", (name,))
                    db.execute("DELETE FROM entries")
                    self._set(offset=snapshot.index, offset_term=snapshot.term)
                if entries:
                    db.execute("DELETE FROM entries WHERE idx >= ?", (entries[0].index,))
                    db.executemany(
                        "INSERT INTO entries (idx, term, type, data) VALUES (?, ?, ?, ?)",
                        [(e.index, e.term, int(e.type), e.data) for e in entries],
                    )
                if hard_state is not None:
                    self._set(term=hard_state.term, vote=hard_state.vote, commit=hard_state.commit)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            if name is not None:
                self._remove_other_snapshots(name)

    def save_snapshot(self, snapshot: Snapshot, offset: tuple[int, int]) -> None:
        with self._lock:
            name = self._write_snapshot_file(snapshot)
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("INSERT OR REPLACE INTO snapshot (id, name) VALUES (1, ?)", (name,))
                cur = db.execute("SELECT value FROM meta WHERE key = 'offset'").fetchone()
                if offset[0] > (cur[0] if cur else 0):
                    db.execute("DELETE FROM entries WHERE idx <= ?", (offset[0],))
                    self._set(offset=offset[0], offset_term=offset[1])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._remove_other_snapshots(name)

    def _set(self, **values: int) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(values.items())
        )

    def _write_snapshot_file(self, snapshot: Snapshot) -> str:
        body = codec.encode_snapshot(snapshot)
        name = f"snap-{snapshot.term:016x}-{snapshot.index:016x}.snap"
        tmp = self.snap_dir / (name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, _SNAP_HEADER.pack(_SNAP_MAGIC, zlib.crc32(body), len(body)))
            view = memoryview(body)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.snap_dir / name)
        dfd = os.open(self.snap_dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return name

    def _remove_other_snapshots(self, keep: str | None) -> None:
        for p in self.snap_dir.iterdir():
            if p.name != keep:
                p.unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class AsyncStorage:
    """A ``Storage`` whose blocking calls run in a worker thread, one at a time.
    ``threaded=False`` calls it inline (a MemoryStorage in tests: no thread to wait for)."""

    def __init__(self, storage: Storage, threaded: bool = True) -> None:
        self.storage = storage
        self.threaded = threaded
        self._lock = asyncio.Lock()

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._lock:
            if self.threaded:
                return await asyncio.to_thread(fn, *args)
            return fn(*args)

    async def load(self) -> PersistentState:
        return await self._call(self.storage.load)

    async def save(
        self, hard_state: HardState | None, entries: list[Entry], snapshot: Snapshot | None = None
    ) -> None:
        await self._call(self.storage.save, hard_state, entries, snapshot)

    async def save_snapshot(self, snapshot: Snapshot, offset: tuple[int, int]) -> None:
        await self._call(self.storage.save_snapshot, snapshot, offset)

    async def close(self) -> None:
        await self._call(self.storage.close)
