"""Durable raft storage: what a save returned from is what a reopen gives back."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.raft.cipher import KeyRing
from shoal.raft.storage import AsyncStorage, MemoryStorage, SQLiteStorage, StorageCorrupted
from shoal.raft.types import ConfState, Entry, EntryType, HardState, PersistentState, Snapshot

CONF = ConfState(frozenset({1, 2, 3}), frozenset())


def ents(lo: int, hi: int, term: int) -> list[Entry]:
    return [Entry(i, term, EntryType.NORMAL, f"e{i}t{term}".encode()) for i in range(lo, hi + 1)]


def test_round_trip(tmp_path):
    s = SQLiteStorage(tmp_path)
    assert s.load() == PersistentState()
    s.save(HardState(2, 1, 3), ents(1, 5, 2))
    s.close()
    st_ = SQLiteStorage(tmp_path).load()
    assert st_.hard_state == HardState(2, 1, 3)
    assert st_.entries == ents(1, 5, 2)
    assert st_.offset == 0 and st_.snapshot is None


def test_new_entries_replace_a_conflicting_tail(tmp_path):
    s = SQLiteStorage(tmp_path)
    s.save(HardState(2, 0, 0), ents(1, 10, 2))
    s.save(HardState(3, 0, 0), ents(6, 7, 3))
    assert s.load().entries == ents(1, 5, 2) + ents(6, 7, 3)


def test_a_received_snapshot_replaces_the_log(tmp_path):
    s = SQLiteStorage(tmp_path)
    s.save(HardState(2, 0, 3), ents(1, 10, 2))
    snap = Snapshot(20, 3, CONF, b"state at 20")
    s.save(HardState(3, 0, 20), ents(21, 22, 3), snap)
    st_ = SQLiteStorage(tmp_path).load()
    assert st_.snapshot == snap
    assert (st_.offset, st_.offset_term) == (20, 3)
    assert st_.entries == ents(21, 22, 3)
    assert len(list((tmp_path / "snapshots").iterdir())) == 1


def test_local_snapshot_compacts_but_keeps_the_tail(tmp_path):
    s = SQLiteStorage(tmp_path)
    s.save(HardState(2, 0, 100), ents(1, 100, 2))
    snap = Snapshot(90, 2, CONF, b"x" * 1000)
    s.save_snapshot(snap, (80, 2))
    st_ = s.load()
    assert st_.snapshot == snap
    assert st_.offset == 80 and st_.entries == ents(81, 100, 2)
    s.save_snapshot(Snapshot(100, 2, CONF, b"y"), (70, 2))  # never moves the log back
    assert s.load().offset == 80


def test_a_snapshot_file_the_database_does_not_name_is_dropped(tmp_path):
    s = SQLiteStorage(tmp_path)
    s.save(HardState(2, 0, 5), ents(1, 5, 2))
    (tmp_path / "snapshots" / "snap-00-99.snap").write_bytes(b"half written")
    (tmp_path / "snapshots" / "x.tmp").write_bytes(b"half written")
    assert s.load().snapshot is None
    assert list((tmp_path / "snapshots").iterdir()) == []


def test_a_damaged_snapshot_is_detected(tmp_path):
    s = SQLiteStorage(tmp_path)
    s.save(HardState(2, 0, 5), [], Snapshot(5, 2, CONF, b"data" * 100))
    (path,) = (tmp_path / "snapshots").iterdir()
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(StorageCorrupted):
        SQLiteStorage(tmp_path).load()


ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 6), st.integers(1, 5), st.integers(1, 4)),
        st.tuples(st.just("hs"), st.integers(1, 9), st.integers(0, 3), st.integers(0, 3)),
        st.tuples(st.just("snap"), st.integers(0, 5), st.integers(0, 5)),
        st.tuples(st.just("install"), st.integers(1, 10), st.integers(1, 3)),
    ),
    max_size=25,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops, st.booleans())
def test_sqlite_storage_behaves_as_the_memory_model(tmp_path_factory, ops, encrypted):
    """Whatever sequence of writes, SQLite gives back what the in-memory model does, also
    after a reopen, encrypted or not."""
    d = tmp_path_factory.mktemp("s")
    cipher = KeyRing({1: b"k" * 32}, 1) if encrypted else None
    sql, mem = SQLiteStorage(d, cipher=cipher), MemoryStorage()
    for op in ops:
        cur = mem.load()
        last = cur.offset + len(cur.entries)
        if op[0] == "append":
            _, back, n, term = op
            first = max(cur.offset + 1, last + 1 - back)
            new = ents(first, first + n - 1, term)
            for s in (sql, mem):
                s.save(None, new)
        elif op[0] == "hs":
            for s in (sql, mem):
                s.save(HardState(*op[1:]), [])
        elif op[0] == "snap":
            _, behind, keep = op
            index = max(cur.offset, last - behind)
            if index == 0:
                continue
            term = (
                cur.entries[index - cur.offset - 1].term if index > cur.offset else cur.offset_term
            )
            snap = Snapshot(index, term, CONF, f"s{index}".encode())
            off = max(cur.offset, index - keep)
            off_term = (
                cur.entries[off - cur.offset - 1].term if off > cur.offset else cur.offset_term
            )
            for s in (sql, mem):
                s.save_snapshot(snap, (off, off_term))
        else:
            _, ahead, term = op
            snap = Snapshot(last + ahead, term, CONF, b"installed")
            for s in (sql, mem):
                s.save(HardState(term, 0, last + ahead), [], snap)
        assert sql.load() == mem.load()
    sql.close()
    assert SQLiteStorage(d, cipher=cipher).load() == mem.load()


WRITER = textwrap.dedent(
    """
    import sys
    from shoal.raft.storage import SQLiteStorage
    from shoal.raft.types import Entry, HardState, Snapshot, ConfState
    s = SQLiteStorage(sys.argv[1])
    i = 0
    while True:
        i += 1
        s.save(HardState(i, 1, i), [Entry(i, i, data=b"x" * (i % 300))])
        if i % 50 == 0:
            s.save_snapshot(Snapshot(i, i, ConfState(frozenset({1})), b"s" * i), (i - 10, i - 10))
        print(i, flush=True)
    """
)


def test_sigkill_loses_nothing_that_was_acknowledged(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3] / "src"))
    for round_ in range(3):
        d = tmp_path / f"r{round_}"
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(d)], stdout=subprocess.PIPE, text=True, env=env
        )
        assert proc.stdout is not None
        acked = 0
        for line in proc.stdout:
            acked = int(line)
            if acked >= 120 + 37 * round_:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        st_ = SQLiteStorage(d).load()
        hs = st_.hard_state
        # Everything acknowledged is there. The writer goes on between the line read here and
        # the kill (more writes may be done and not yet read from the pipe), so later writes may
        # be there too, whole: the log below is checked to be consistent.
        assert acked <= hs.term
        last = st_.offset + len(st_.entries)
        assert last == hs.term
        assert [e.index for e in st_.entries] == list(range(st_.offset + 1, last + 1))
        assert st_.snapshot is not None and st_.snapshot.data == b"s" * st_.snapshot.index


async def test_async_storage_runs_in_a_thread(tmp_path):
    s = AsyncStorage(SQLiteStorage(tmp_path))
    await s.save(HardState(1, 0, 1), ents(1, 3, 1))
    await s.save_snapshot(Snapshot(2, 1, CONF, b"z"), (1, 1))
    st_ = await s.load()
    assert st_.entries == ents(2, 3, 1)
    await s.close()
