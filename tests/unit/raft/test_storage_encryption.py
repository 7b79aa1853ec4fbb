"""The raft storage encrypted at rest: no byte of an entry or snapshot reaches the disk in
plaintext, a changed or moved value is caught, a rotation's mixed log reads whole, and a
plaintext store is upgraded when first opened with a key."""

import sqlite3
from pathlib import Path

import pytest

from shoal.raft.cipher import KeyRing
from shoal.raft.storage import SQLiteStorage, StorageCorrupted
from shoal.raft.types import ConfState, Entry, EntryType, HardState, Snapshot

CONF = ConfState(frozenset({1, 2, 3}), frozenset())
K1, K2 = b"\x11" * 32, b"\x22" * 32
MARKER = b"MARKER-7c1e0b9d"


def ents(lo: int, hi: int, term: int) -> list[Entry]:
    return [
        Entry(i, term, EntryType.NORMAL, MARKER + f"-e{i}t{term}".encode() * 20)
        for i in range(lo, hi + 1)
    ]


def snap(index: int, term: int) -> Snapshot:
    return Snapshot(index, term, CONF, MARKER + b"-snapshot" * 500)


def files_holding(directory: Path, needle: bytes) -> list[str]:
    return [
        str(p.relative_to(directory))
        for p in sorted(directory.rglob("*"))
        if p.is_file() and needle in p.read_bytes()
    ]


def key_ids(directory: Path) -> list[int | None]:
    db = sqlite3.connect(directory / "raft.db")
    try:
        return [row[0] for row in db.execute("SELECT key_id FROM entries ORDER BY idx")]
    finally:
        db.close()


def test_round_trip_leaves_no_plaintext_on_disk(tmp_path):
    s = SQLiteStorage(tmp_path, cipher=KeyRing({1: K1}, 1))
    s.save(HardState(2, 1, 3), ents(1, 50, 2), None)
    s.save(HardState(3, 1, 60), ents(51, 60, 3), None)
    s.save_snapshot(snap(40, 2), (30, 2))
    # Open: the -wal and -shm files are there and hold what the last writes wrote.
    assert (tmp_path / "raft.db-wal").exists()
    assert files_holding(tmp_path, MARKER) == []
    st_ = s.load()
    assert st_.entries == ents(31, 50, 2) + ents(51, 60, 3)
    assert st_.snapshot == snap(40, 2)
    s.close()
    again = SQLiteStorage(tmp_path, cipher=KeyRing({1: K1}, 1)).load()
    assert again == st_
    assert files_holding(tmp_path, MARKER) == []
    assert set(key_ids(tmp_path)) == {1}


def test_a_received_snapshot_is_written_encrypted(tmp_path):
    s = SQLiteStorage(tmp_path, cipher=KeyRing({1: K1}, 1))
    s.save(HardState(3, 0, 20), ents(21, 22, 3), snap(20, 3))
    assert files_holding(tmp_path, MARKER) == []
    assert s.load().snapshot == snap(20, 3)


def tamper_entry(directory: Path, index: int) -> None:
    db = sqlite3.connect(directory / "raft.db")
    (data,) = db.execute("SELECT data FROM entries WHERE idx = ?", (index,)).fetchone()
    changed = bytearray(data)
    changed[len(changed) // 2] ^= 0x01
    db.execute("UPDATE entries SET data = ? WHERE idx = ?", (bytes(changed), index))
    db.commit()
    db.close()


def test_a_changed_entry_is_caught(tmp_path):
    s = SQLiteStorage(tmp_path, cipher=KeyRing({1: K1}, 1))
    s.save(HardState(2, 0, 0), ents(1, 5, 2))
    s.close()
    tamper_entry(tmp_path, 3)
    with pytest.raises(StorageCorrupted, match="entry 3"):
        SQLiteStorage(tmp_path, cipher=KeyRing({1: K1}, 1)).load()


def test_an_entry_moved_to_another_place_is_caught(tmp_path):
    s = SQLiteStorage(tmp_path, cipher=KeyRing({1: K1}, 1))
    s.save(HardState(2, 0, 0), ents(1, 5, 2))
    s.close()
    db = sqlite3.connect(tmp_path / "raft.db")
    (data,) = db.execute("SELECT data FROM entries WHERE idx = 2").fetchone()
    db.execute("UPDATE entries SET data = ? WHERE idx = 4", (data,))  # a valid value, elsewhere
    db.execute("UPDATE entries SET term = 9 WHERE idx = 5")  # its place changed
    db.commit()
    db.close()
    with pytest.raises(StorageCorrupted, match="entry 4"):
        SQLiteStorage(tmp_path, cipher=KeyRing({1: K1}, 1)).load()


def test_a_changed_or_renamed_snapshot_is_caught(tmp_path):
    s = SQLiteStorage(tmp_path, cipher=KeyRing({1: K1}, 1))
    s.save(HardState(2, 0, 5), [], snap(5, 2))
    s.close()
    (path,) = (tmp_path / "snapshots").iterdir()
    good = path.read_bytes()
    bad = bytearray(good)
    bad[-40] ^= 0x80
    path.write_bytes(bytes(bad))
    with pytest.raises(StorageCorrupted, match="snapshot"):
        SQLiteStorage(tmp_path, cipher=KeyRing({1: K1}, 1)).load()
    path.write_bytes(good[:-5])  # truncated
    with pytest.raises(StorageCorrupted, match="snapshot"):
        SQLiteStorage(tmp_path, cipher=KeyRing({1: K1}, 1)).load()
    # Another snapshot's valid file put in this one's place.
    other = tmp_path / "other"
    o = SQLiteStorage(other, cipher=KeyRing({1: K1}, 1))
    o.save(HardState(2, 0, 4), [], snap(4, 2))
    o.close()
    (other_path,) = (other / "snapshots").iterdir()
    path.write_bytes(other_path.read_bytes())
    with pytest.raises(StorageCorrupted, match="snapshot"):
        SQLiteStorage(tmp_path, cipher=KeyRing({1: K1}, 1)).load()


def test_a_wrong_or_missing_key_does_not_read(tmp_path):
    s = SQLiteStorage(tmp_path, cipher=KeyRing({1: K1}, 1))
    s.save(HardState(2, 0, 0), ents(1, 3, 2))
    s.close()
    with pytest.raises(StorageCorrupted, match="tag"):
        SQLiteStorage(tmp_path, cipher=KeyRing({1: K2}, 1)).load()
    with pytest.raises(StorageCorrupted, match="does not hold"):
        SQLiteStorage(tmp_path, cipher=KeyRing({2: K1}, 2)).load()
    with pytest.raises(StorageCorrupted, match="no key"):
        SQLiteStorage(tmp_path).load()


def test_a_rotation_reads_a_mixed_log_and_rewrites_it_in_batches(tmp_path):
    ring = KeyRing({1: K1}, 1)
    s = SQLiteStorage(tmp_path, cipher=ring)
    s.save(HardState(2, 0, 0), ents(1, 30, 2))
    s.save_snapshot(snap(10, 2), (5, 2))
    ring.add(2, K2)
    ring.write_with(2)
    s.save(HardState(3, 0, 0), ents(31, 40, 3))  # new writes under the new key at once
    assert key_ids(tmp_path) == [1] * 25 + [2] * 10
    assert s.count_not_under_write_key() == 26  # 25 entries and the snapshot
    expected = s.load()
    assert expected.entries == ents(6, 30, 2) + ents(31, 40, 3)
    # A batch at a time, raft writing in between.
    last = s.reencrypt_entries(0, 10)
    assert last == 15
    assert key_ids(tmp_path) == [2] * 10 + [1] * 15 + [2] * 10
    s.save(HardState(3, 0, 0), ents(39, 41, 3))  # a new tail, replacing two entries
    assert s.load().entries == ents(6, 30, 2) + ents(31, 38, 3) + ents(39, 41, 3)
    while last is not None:
        last = s.reencrypt_entries(last, 10)
    assert s.reencrypt_snapshot() is True and s.reencrypt_snapshot() is False
    assert s.count_not_under_write_key() == 0
    ring.drop(1)
    s.truncate_wal()
    st_ = s.load()
    assert st_.entries == ents(6, 30, 2) + ents(31, 38, 3) + ents(39, 41, 3)
    assert st_.snapshot == snap(10, 2)
    s.close()
    assert SQLiteStorage(tmp_path, cipher=KeyRing({2: K2}, 2)).load() == st_


def test_a_store_stopped_at_any_step_of_a_rotation_reads(tmp_path):
    """Reopened after each step with the keys a manager would have then (both, during the
    rotation), the store reads whole: each step is a transaction or an atomic rename."""
    both = {1: K1, 2: K2}
    s = SQLiteStorage(tmp_path, cipher=KeyRing({1: K1}, 1))
    s.save(HardState(2, 0, 0), ents(1, 20, 2))
    s.save_snapshot(snap(8, 2), (4, 2))
    expected = s.load()
    s.close()
    steps = ["entries", "entries", "entries", "snapshot"]
    for step in steps:
        s = SQLiteStorage(tmp_path, cipher=KeyRing(both, 2))
        assert s.load() == expected
        if step == "entries":
            s.reencrypt_entries(0, 7)
        else:
            s.reencrypt_snapshot()
        s.close()
    s = SQLiteStorage(tmp_path, cipher=KeyRing(both, 2))
    assert s.count_not_under_write_key() == 0
    s.close()
    assert SQLiteStorage(tmp_path, cipher=KeyRing({2: K2}, 2)).load() == expected


def test_a_plaintext_store_is_encrypted_when_first_opened_with_a_key(tmp_path):
    plain = SQLiteStorage(tmp_path)
    plain.save(HardState(2, 1, 3), ents(1, 40, 2))
    plain.save_snapshot(snap(20, 2), (10, 2))
    plain.save(HardState(3, 1, 45), ents(41, 45, 3))
    expected = plain.load()
    plain.close()
    assert files_holding(tmp_path, MARKER) != []
    assert set(key_ids(tmp_path)) == {None}

    s = SQLiteStorage(tmp_path, cipher=KeyRing({1: K1}, 1))
    assert files_holding(tmp_path, MARKER) == []
    assert set(key_ids(tmp_path)) == {1}
    assert s.load() == expected
    s.save(HardState(3, 1, 46), ents(46, 46, 3))
    s.close()
    assert files_holding(tmp_path, MARKER) == []
    st_ = SQLiteStorage(tmp_path, cipher=KeyRing({1: K1}, 1)).load()
    assert st_.entries == expected.entries + ents(46, 46, 3)


def test_an_upgrade_stopped_halfway_completes_on_the_next_open(tmp_path):
    plain = SQLiteStorage(tmp_path)
    plain.save(HardState(2, 1, 3), ents(1, 40, 2))
    expected = plain.load()
    plain.close()
    # As if the first encrypted open stopped after one batch, before its VACUUM.
    half = SQLiteStorage(tmp_path)
    half.cipher = KeyRing({1: K1}, 1)
    half.reencrypt_entries(0, 15)
    half.close()
    assert key_ids(tmp_path) == [1] * 15 + [None] * 25
    s = SQLiteStorage(tmp_path, cipher=KeyRing({1: K1}, 1))
    assert set(key_ids(tmp_path)) == {1}
    assert s.load() == expected
    s.close()
    assert files_holding(tmp_path, MARKER) == []


def test_deleted_rows_leave_no_bytes_behind(tmp_path):
    """secure_delete: a plaintext store's compacted entries do not linger in free pages."""
    s = SQLiteStorage(tmp_path)
    s.save(HardState(2, 0, 0), [Entry(1, 2, EntryType.NORMAL, b"GONE-" * 2000)])
    s.save(HardState(2, 0, 0), ents(2, 3, 2))
    s.save_snapshot(Snapshot(2, 2, CONF, b"s"), (2, 2))
    s.truncate_wal()
    s.close()
    assert b"GONE-GONE-" not in (tmp_path / "raft.db").read_bytes()


def old_store(directory: Path) -> None:
    """A store as SQLiteStorage wrote it before encryption: no key_id column, no
    secure_delete, so the rows raft deleted (a compacted log) are still in free pages."""
    directory.mkdir()
    (directory / "snapshots").mkdir()
    db = sqlite3.connect(directory / "raft.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA secure_delete=OFF")
    db.execute(
        "CREATE TABLE entries (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL,"
        " type INTEGER NOT NULL, data BLOB NOT NULL)"
    )
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    db.execute("CREATE TABLE snapshot (id INTEGER PRIMARY KEY, name TEXT)")
    for e in ents(1, 30, 2):
        db.execute("INSERT INTO entries VALUES (?, ?, ?, ?)", (e.index, e.term, 0, e.data))
    db.execute("DELETE FROM entries WHERE idx <= 10")
    db.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [("term", 2), ("vote", 1), ("commit", 30), ("offset", 10), ("offset_term", 2)],
    )
    db.close()


def test_a_store_from_before_encryption_is_upgraded_without_a_trace(tmp_path):
    d = tmp_path / "raft"
    old_store(d)
    before = SQLiteStorage(d).load()  # still reads as it is
    assert before.entries == ents(11, 30, 2)
    assert b"-e3t2" in (d / "raft.db").read_bytes() + (d / "raft.db-wal").read_bytes()
    s = SQLiteStorage(d, cipher=KeyRing({1: K1}, 1))
    assert s.load() == before
    s.close()
    assert files_holding(d, MARKER) == []
