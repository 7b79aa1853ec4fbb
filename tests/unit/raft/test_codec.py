"""Messages, snapshots and configuration changes survive the trip through bytes."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.raft import codec
from shoal.raft.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    Message,
    MessageType,
    Snapshot,
)

u64 = st.integers(min_value=0, max_value=2**64 - 1)
ids = st.integers(min_value=1, max_value=2**64 - 1)
entries = st.builds(Entry, u64, u64, st.sampled_from(EntryType), st.binary(max_size=64))
confs = st.builds(ConfState, st.frozensets(ids, max_size=5), st.frozensets(ids, max_size=3))
snapshots = st.builds(Snapshot, u64, u64, confs, st.binary(max_size=256))
messages = st.builds(
    Message,
    type=st.sampled_from(MessageType),
    to=ids,
    from_=ids,
    term=u64,
    log_term=u64,
    index=u64,
    entries=st.lists(entries, max_size=4),
    commit=u64,
    reject=st.booleans(),
    reject_hint=u64,
    context=u64,
    snapshot=st.none() | snapshots,
)


@given(messages)
def test_message_round_trip(m):
    assert codec.decode_message(codec.encode_message(m)) == m


@given(snapshots)
def test_snapshot_round_trip(s):
    assert codec.decode_snapshot(codec.encode_snapshot(s)) == s


@given(st.builds(ConfChange, st.sampled_from(ConfChangeType), ids, st.binary(max_size=64)))
def test_conf_change_round_trip(cc):
    assert codec.decode_conf_change(codec.encode_conf_change(cc)) == cc


@given(messages, st.data())
def test_truncated_messages_are_refused(m, data):
    raw = codec.encode_message(m)
    cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    with pytest.raises(codec.DecodeError):
        codec.decode_message(raw[:cut])


def test_garbage_is_refused():
    with pytest.raises(codec.DecodeError):
        codec.decode_message(b"\x07" + bytes(80))
    with pytest.raises(codec.DecodeError):
        codec.decode_conf_change(b"\x01\x09" + bytes(12))
