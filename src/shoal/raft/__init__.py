"""Consensus among managers.

- ``shoal.raft.core.Core``: Raft as a pure, deterministic state machine (ticked and stepped).
- ``shoal.raft.storage``: durable log, hard state and snapshots (SQLite + files), encrypted
  at rest with a ``shoal.raft.cipher.Cipher`` (AEAD; the keys are the application's).
- ``shoal.raft.node.RaftNode``: the asyncio driver tying a core to storage, a transport and
  the application's state machine.
- ``shoal.raft.codec``: bytes for messages (the transport) and configuration changes.
"""

from shoal.raft.core import Core, bootstrap, force_new_cluster
from shoal.raft.types import (
    NONE,
    CommitUnknown,
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    NotLeader,
    PeerStatus,
    PersistentState,
    ProposalDropped,
    RaftConfig,
    RaftError,
    ReadState,
    Ready,
    Role,
    Snapshot,
    SoftState,
    Status,
)

__all__ = [
    "NONE",
    "CommitUnknown",
    "ConfChange",
    "ConfChangeType",
    "ConfState",
    "Core",
    "Entry",
    "EntryType",
    "HardState",
    "Message",
    "MessageType",
    "NotLeader",
    "PeerStatus",
    "PersistentState",
    "ProposalDropped",
    "RaftConfig",
    "RaftError",
    "ReadState",
    "Ready",
    "Role",
    "Snapshot",
    "SoftState",
    "Status",
    "bootstrap",
    "force_new_cluster",
]
