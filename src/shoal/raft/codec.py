"""Bytes for raft values: messages on the wire, configuration changes and snapshots in the log.

A fixed binary layout (network byte order, a version byte first) rather than JSON: entries
carry opaque bytes that JSON would have to base64, and appends are on the hot path. The
transport sends ``encode_message(m)`` as one opaque ``bytes`` field; a SNAP message can be
large (the whole store), so a transport may split those bytes into chunks and join them
before ``decode_message``.
"""

import struct

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

VERSION = 1

_MSG = struct.Struct("!BBQQQQQQBQQIB")
_ENTRY = struct.Struct("!QQBI")
_SNAP = struct.Struct("!QQII")
_U64 = struct.Struct("!Q")
_CC = struct.Struct("!BBQI")


class DecodeError(ValueError):
    pass


def encode_message(m: Message) -> bytes:
    parts = [
        _MSG.pack(
            VERSION,
            m.type,
            m.to,
            m.from_,
            m.term,
            m.log_term,
            m.index,
            m.commit,
            int(m.reject),
            m.reject_hint,
            m.context,
            len(m.entries),
            int(m.snapshot is not None),
        )
    ]
    for e in m.entries:
        parts.append(_ENTRY.pack(e.index, e.term, e.type, len(e.data)))
        parts.append(e.data)
    if m.snapshot is not None:
        parts.append(encode_snapshot(m.snapshot))
    return b"".join(parts)


def decode_message(data: bytes) -> Message:
    try:
        view = memoryview(data)
        (version, kind, to, frm, term, log_term, index, commit, reject, hint, ctx, n, has_snap) = (
            _MSG.unpack_from(view, 0)
        )
        if version != VERSION:
            raise DecodeError(f"raft message version {version}")
        pos = _MSG.size
        entries = []
        for _ in range(n):
            e, pos = _decode_entry(view, pos)
            entries.append(e)
        snap = None
        if has_snap:
            snap, pos = _decode_snapshot(view, pos)
        if pos != len(view):
            raise DecodeError("trailing bytes after raft message")
        return Message(
            type=MessageType(kind),
            to=to,
            from_=frm,
            term=term,
            log_term=log_term,
            index=index,
            entries=entries,
            commit=commit,
            reject=bool(reject),
            reject_hint=hint,
            context=ctx,
            snapshot=snap,
        )
    except (struct.error, ValueError) as err:
        if isinstance(err, DecodeError):
            raise
        raise DecodeError(f"bad raft message: {err}") from err


def _decode_entry(view: memoryview, pos: int) -> tuple[Entry, int]:
    index, term, kind, size = _ENTRY.unpack_from(view, pos)
    pos += _ENTRY.size
    if pos + size > len(view):
        raise DecodeError("truncated entry")
    data = bytes(view[pos : pos + size])
    return Entry(index, term, EntryType(kind), data), pos + size


def encode_snapshot(s: Snapshot) -> bytes:
    return b"".join(encode_snapshot_parts(s))


def encode_snapshot_parts(s: Snapshot) -> tuple[bytes, bytes]:
    """``encode_snapshot`` in two parts, its header and the state's data (not copied), to
    write one after the other."""
    voters, learners = sorted(s.conf.voters), sorted(s.conf.learners)
    header = b"".join(
        [
            _SNAP.pack(s.index, s.term, len(voters), len(learners)),
            *(_U64.pack(v) for v in voters),
            *(_U64.pack(v) for v in learners),
            _U64.pack(len(s.data)),
        ]
    )
    return header, s.data


def decode_snapshot(data: bytes) -> Snapshot:
    try:
        snap, pos = _decode_snapshot(memoryview(data), 0)
    except struct.error as err:
        raise DecodeError(f"bad snapshot: {err}") from err
    if pos != len(data):
        raise DecodeError("trailing bytes after snapshot")
    return snap


def _decode_snapshot(view: memoryview, pos: int) -> tuple[Snapshot, int]:
    index, term, nv, nl = _SNAP.unpack_from(view, pos)
    pos += _SNAP.size
    ids = []
    for _ in range(nv + nl):
        ids.append(_U64.unpack_from(view, pos)[0])
        pos += 8
    (size,) = _U64.unpack_from(view, pos)
    pos += 8
    if pos + size > len(view):
        raise DecodeError("truncated snapshot")
    conf = ConfState(frozenset(ids[:nv]), frozenset(ids[nv:]))
    return Snapshot(index, term, conf, bytes(view[pos : pos + size])), pos + size


def encode_conf_change(cc: ConfChange) -> bytes:
    return _CC.pack(VERSION, cc.type, cc.node_id, len(cc.context)) + cc.context


def decode_conf_change(data: bytes) -> ConfChange:
    try:
        version, kind, node_id, size = _CC.unpack_from(data, 0)
        if version != VERSION or _CC.size + size != len(data):
            raise DecodeError("bad configuration change")
        return ConfChange(ConfChangeType(kind), node_id, bytes(data[_CC.size :]))
    except (struct.error, ValueError) as err:
        if isinstance(err, DecodeError):
            raise
        raise DecodeError(f"bad configuration change: {err}") from err
