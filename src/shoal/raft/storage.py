"""Durable raft state in a directory: hard state and log entries in SQLite, snapshots as files.

Why SQLite: one file with atomic multi-row transactions, so a Ready's hard state, truncation
and new entries land together or not at all; crash recovery (the WAL) is SQLite's problem,
well tested, and in the standard library. WAL mode makes each commit one sequential append
plus one fsync (synchronous=FULL), with no rollback journal to sync as well. Snapshots can be
large and are written once, so they go to their own files (write, fsync, rename, fsync the
directory): the database only names the current one, and a snapshot file the database does
not name (a crash between the two writes) is ignored and removed on the next open.

Encryption at rest: given a ``Cipher``, ``SQLiteStorage`` seals each entry's data and each
snapshot body with AEAD, the entry's index, term and type (the snapshot's index and term) as
associated data so a sealed value cannot be moved to another place, and records beside each
value the ID of the key that sealed it, so a log written partly under the old and partly under
the new key during a rotation reads whole. ``reencrypt_entries`` and ``reencrypt_snapshot``
rewrite, batch by batch, what is not under the key new writes use. The hard state (term, vote,
commit) and the log's offsets stay plaintext: they say nothing of the cluster.
``PRAGMA secure_delete`` zeroes deleted rows and freed pages, and temporary tables stay in
memory, so no old bytes linger in the database or beside it; since every value is sealed
before SQLite sees it, the -wal file only ever holds ciphertext. A store written in plaintext
(before encryption, or without a cipher) is re-encrypted when first opened with one, then
VACUUMed and its WAL truncated, so that no plaintext page survives the upgrade.

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from shoal.raft import codec
from shoal.raft.cipher import Cipher, CipherError
from shoal.raft.types import Entry, EntryType, HardState, PersistentState, Snapshot

T = TypeVar("T")

_SNAP_MAGIC = b"SHOALSNP"
_SNAP_HEADER = struct.Struct("!8sIQ")  # magic, crc32 of body, body length
# An encrypted snapshot: magic, key ID, term, index, then the nonce and the sealed body; the
# header is the associated data, so the body opens only where the header (and the file's name)
# says, and the AEAD tag catches a truncated body as it does a changed one.
_SEALED_SNAP_MAGIC = b"SHOALSNE"
_SEALED_SNAP_HEADER = struct.Struct("!8sIQQ")
_ENTRY_AD = struct.Struct("!16sQQB")
_ENTRY_AD_LABEL = b"shoal-raft-entry"


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
    def __init__(
        self, directory: Path | str, synchronous: str = "FULL", cipher: Cipher | None = None
    ) -> None:
        self.dir = Path(directory)
        self.cipher = cipher
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
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.execute("PRAGMA temp_store=MEMORY")  # VACUUM's copy stays off the disk
        # key_id: the key that sealed ``data``; NULL for plaintext.
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS entries ("
            " idx INTEGER PRIMARY KEY, term INTEGER NOT NULL,"
            " type INTEGER NOT NULL, data BLOB NOT NULL, key_id INTEGER)"
        )
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(entries)")}
        if "key_id" not in columns:  # a store from before encryption
            self._db.execute("ALTER TABLE entries ADD COLUMN key_id INTEGER")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY, name TEXT)")
        if cipher is not None:
            self._encrypt_plaintext()

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
                "SELECT idx, term, type, data, key_id FROM entries WHERE idx > ? ORDER BY idx",
                (offset,),
            ).fetchall()
        entries = [
            Entry(i, t, EntryType(k), self._open_entry(i, t, k, d, key)) for i, t, k, d, key in rows
        ]
        for n, e in enumerate(entries):
            if e.index != offset + 1 + n:
                raise StorageCorrupted(f"log has a gap before entry {e.index}")
        hs = HardState(meta.get("term", 0), meta.get("vote", 0), meta.get("commit", 0))
        return PersistentState(hs, snapshot, offset, meta.get("offset_term", 0), entries)

    def _open_entry(
        self,
        index: int,
        term: int,
        kind: int,
        data: bytes,
        key_id: int | None,
        allow_plaintext: bool = False,
    ) -> bytes:
        if key_id is None:
            if self.cipher is not None and not allow_plaintext:
                raise StorageCorrupted(f"entry {index} is plaintext in an encrypted store")
            return bytes(data)
        if self.cipher is None:
            raise StorageCorrupted(f"entry {index} is encrypted and this store has no key")
        try:
            return self.cipher.unseal(key_id, bytes(data), _entry_ad(index, term, kind))
        except CipherError as err:
            raise StorageCorrupted(f"entry {index}: {err}") from err

    def _read_snapshot(self, path: Path) -> Snapshot:
        return codec.decode_snapshot(self._read_snapshot_body(path)[0])

    def _read_snapshot_body(
        self, path: Path, allow_plaintext: bool = False
    ) -> tuple[bytes, int | None]:
        """A snapshot file's plaintext body, and the ID of the key that sealed it (None: the
        file is plaintext)."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError as err:
            raise StorageCorrupted(f"snapshot {path} is missing") from err
        if raw[:8] == _SEALED_SNAP_MAGIC:
            return self._open_snapshot(path, raw)
        if len(raw) < _SNAP_HEADER.size:
            raise StorageCorrupted(f"snapshot {path} is truncated")
        magic, crc, size = _SNAP_HEADER.unpack_from(raw, 0)
        body = raw[_SNAP_HEADER.size :]
        if magic != _SNAP_MAGIC or size != len(body) or zlib.crc32(body) != crc:
            raise StorageCorrupted(f"snapshot {path} is corrupted")
        if self.cipher is not None and not allow_plaintext:
            raise StorageCorrupted(f"snapshot {path} is plaintext in an encrypted store")
        return body, None

    def _open_snapshot(self, path: Path, raw: bytes) -> tuple[bytes, int]:
        if len(raw) < _SEALED_SNAP_HEADER.size:
            raise StorageCorrupted(f"snapshot {path} is truncated")
        header = raw[: _SEALED_SNAP_HEADER.size]
        _, key_id, term, index = _SEALED_SNAP_HEADER.unpack(header)
        sealed = memoryview(raw)[_SEALED_SNAP_HEADER.size :]  # nonce || ciphertext, uncopied
        if path.name != _snapshot_name(term, index):
            raise StorageCorrupted(f"snapshot {path} is corrupted")
        if self.cipher is None:
            raise StorageCorrupted(f"snapshot {path} is encrypted and this store has no key")
        try:
            return self.cipher.unseal(key_id, sealed, header), key_id
        except CipherError as err:
            raise StorageCorrupted(f"snapshot {path}: {err}") from err

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
                        "INSERT INTO entries (idx, term, type, data, key_id)"
                        " VALUES (?, ?, ?, ?, ?)",
                        self._entry_rows(entries),
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

    def _entry_rows(self, entries: list[Entry]) -> list[tuple[int, int, int, bytes, int | None]]:
        if self.cipher is None:
            return [(e.index, e.term, int(e.type), e.data, None) for e in entries]
        pack = _ENTRY_AD.pack
        key_id, sealed = self.cipher.seal_all(
            [(e.data, pack(_ENTRY_AD_LABEL, e.index, e.term, e.type)) for e in entries]
        )
        return [
            (e.index, e.term, int(e.type), v, key_id) for e, v in zip(entries, sealed, strict=True)
        ]

    def _set(self, **values: int) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(values.items())
        )

    def _write_snapshot_file(self, snapshot: Snapshot) -> str:
        return self._write_snapshot_body(
            snapshot.term, snapshot.index, codec.encode_snapshot_parts(snapshot)
        )

    def _write_snapshot_body(
        self, term: int, index: int, parts: Sequence[bytes | memoryview]
    ) -> str:
        """The snapshot file whose body is the concatenation of ``parts``, written a piece at
        a time: the body is never copied whole (nor, encrypted, its ciphertext)."""
        name = _snapshot_name(term, index)
        pieces: Iterable[bytes | memoryview]
        if self.cipher is None:
            crc = 0
            for part in parts:
                crc = zlib.crc32(part, crc)
            header = _SNAP_HEADER.pack(_SNAP_MAGIC, crc, sum(len(p) for p in parts))
            pieces = parts
        else:
            header, pieces = self._seal_snapshot(term, index, parts)
        tmp = self.snap_dir / (name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, header)
            for piece in pieces:
                view = memoryview(piece)
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

    def _seal_snapshot(
        self, term: int, index: int, parts: Sequence[bytes | memoryview]
    ) -> tuple[bytes, Iterator[bytes]]:
        """The header (nonce included) and the ciphertext, in pieces, of an encrypted
        snapshot file whose body is the concatenation of ``parts``."""
        assert self.cipher is not None

        def header_for(key_id: int) -> bytes:
            return _SEALED_SNAP_HEADER.pack(_SEALED_SNAP_MAGIC, key_id, term, index)

        key_id, nonce, pieces = self.cipher.seal_stream(parts, header_for)
        return header_for(key_id) + nonce, pieces

    # --- encryption: upgrading and rotating -----------------------------------------------

    def _encrypt_plaintext(self) -> None:
        """Seal whatever this store holds in plaintext, then rebuild the database file and
        empty the WAL so no page of the plaintext is left. Each step is safe to crash in: the
        next open finds what is still plaintext (or the flag not set) and does it again."""
        db = self._db
        flag = db.execute("SELECT value FROM meta WHERE key = 'sealed'").fetchone()
        plain = db.execute("SELECT 1 FROM entries WHERE key_id IS NULL LIMIT 1").fetchone()
        row = db.execute("SELECT name FROM snapshot WHERE id = 1").fetchone()
        snap_plain = row is not None and not _is_sealed_snapshot(self.snap_dir / row[0])
        if flag is not None and flag[0] == 1 and plain is None and not snap_plain:
            return
        with self._lock:
            if snap_plain:
                self._reencrypt_snapshot_locked()
            after = 0
            while True:
                last = self._reencrypt_batch(after, 1024, plaintext_only=True)
                if last is None:
                    break
                after = last
            db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('sealed', 1)")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def reencrypt_entries(self, after: int, limit: int) -> int | None:
        """Seal again, under the key new writes use, up to ``limit`` entries after index
        ``after`` that are under another key (or plaintext), in one transaction. Returns the
        last index it rewrote, to continue from, or None when no such entry is left after
        ``after``. Raft keeps writing between batches: what it writes is under the new key."""
        with self._lock:
            return self._reencrypt_batch(after, limit, plaintext_only=False)

    def _reencrypt_batch(self, after: int, limit: int, plaintext_only: bool) -> int | None:
        cipher = self.cipher
        if cipher is None:
            raise StorageCorrupted("this store has no key to encrypt with")
        db = self._db
        rows = db.execute(
            "SELECT idx, term, type, data, key_id FROM entries"
            " WHERE idx > ? AND (key_id IS NULL OR (? AND key_id != ?))"
            " ORDER BY idx LIMIT ?",
            (after, not plaintext_only, cipher.write_key_id, limit),
        ).fetchall()
        if not rows:
            return None
        items = []
        for idx, term, kind, data, key_id in rows:
            plain = self._open_entry(idx, term, kind, data, key_id, allow_plaintext=True)
            items.append((plain, _entry_ad(idx, term, kind)))
        new_key, sealed = cipher.seal_all(items)
        updates = [(v, new_key, row[0]) for v, row in zip(sealed, rows, strict=True)]
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("UPDATE entries SET data = ?, key_id = ? WHERE idx = ?", updates)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return int(rows[-1][0])

    def reencrypt_snapshot(self) -> bool:
        """Seal the current snapshot again under the key new writes use, if it is under
        another; whether it was rewritten."""
        with self._lock:
            return self._reencrypt_snapshot_locked()

    def _reencrypt_snapshot_locked(self) -> bool:
        if self.cipher is None:
            raise StorageCorrupted("this store has no key to encrypt with")
        row = self._db.execute("SELECT name FROM snapshot WHERE id = 1").fetchone()
        if row is None:
            return False
        path = self.snap_dir / row[0]
        body, key_id = self._read_snapshot_body(path, allow_plaintext=True)
        if key_id == self.cipher.write_key_id:
            return False
        snapshot = codec.decode_snapshot(body)
        # Same name: the file is replaced whole (write, fsync, rename), the database unchanged.
        self._write_snapshot_body(snapshot.term, snapshot.index, (body,))
        return True

    def count_not_under_write_key(self) -> int:
        """Entries and snapshot not sealed under the key new writes use (0: a rotation may
        drop the old key)."""
        if self.cipher is None:
            raise StorageCorrupted("this store has no key to encrypt with")
        with self._lock:
            (n,) = self._db.execute(
                "SELECT COUNT(*) FROM entries WHERE key_id IS NULL OR key_id != ?",
                (self.cipher.write_key_id,),
            ).fetchone()
            row = self._db.execute("SELECT name FROM snapshot WHERE id = 1").fetchone()
            if row is not None:
                raw = (self.snap_dir / row[0]).read_bytes()[: _SEALED_SNAP_HEADER.size]
                if raw[:8] != _SEALED_SNAP_MAGIC:
                    n += 1
                elif _SEALED_SNAP_HEADER.unpack(raw)[1] != self.cipher.write_key_id:
                    n += 1
            return int(n)

    def truncate_wal(self) -> None:
        """Copy the WAL into the database and empty it (after a rotation: the old key's
        ciphertext goes with it)."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _snapshot_name(term: int, index: int) -> str:
    return f"snap-{term:016x}-{index:016x}.snap"


def _entry_ad(index: int, term: int, kind: int) -> bytes:
    return _ENTRY_AD.pack(_ENTRY_AD_LABEL, index, term, kind)


def _is_sealed_snapshot(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(8) == _SEALED_SNAP_MAGIC
    except FileNotFoundError:
        return False


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
