"""The values the Raft core exchanges with its driver: messages, log entries, snapshots,
hard state, and the ``Ready`` batch.

Node IDs are positive integers (Swarm's raft IDs are random uint64s); 0 means "nobody".
Everything here is plain data; ``shoal.raft.codec`` turns it into bytes for the wire and
for storage.
"""

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from shoal.errors import Unavailable

NONE = 0


class MessageType(IntEnum):
    APP = 1  # append entries (index/log_term: the entry before them)
    APP_RESP = 2
    VOTE = 3
    VOTE_RESP = 4
    PRE_VOTE = 5
    PRE_VOTE_RESP = 6
    SNAP = 7  # install snapshot
    HEARTBEAT = 8
    HEARTBEAT_RESP = 9
    TIMEOUT_NOW = 10  # leadership transfer: campaign at once, ignoring leases
    READ_INDEX = 11  # follower -> leader: confirm leadership for a read
    READ_INDEX_RESP = 12


class EntryType(IntEnum):
    NORMAL = 0  # application data; empty data is the leader's no-op
    CONF_CHANGE = 1  # data is an encoded ConfChange


class ConfChangeType(IntEnum):
    ADD_LEARNER = 0  # joins without a vote, to catch up first
    ADD_VOTER = 1  # adds a voter, or promotes a learner
    REMOVE = 2


class Role(StrEnum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class ProgressState(StrEnum):
    PROBE = "probe"  # one append at a time until the follower's log position is found
    REPLICATE = "replicate"  # streaming appends, up to max_inflight unacknowledged
    SNAPSHOT = "snapshot"  # a snapshot is on its way; nothing else is sent


@dataclass(frozen=True, slots=True)
class Entry:
    index: int
    term: int
    type: EntryType = EntryType.NORMAL
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be on disk before any message that depends on it is sent."""

    term: int = 0
    vote: int = NONE
    commit: int = 0


@dataclass(frozen=True, slots=True)
class ConfState:
    voters: frozenset[int] = frozenset()
    learners: frozenset[int] = frozenset()

    @property
    def members(self) -> frozenset[int]:
        return self.voters | self.learners

    def problem_with(self, cc: "ConfChange") -> str:
        """Why raft refuses ``cc`` under this configuration (every node alike), or "" if it
        applies."""
        if cc.node_id == NONE:
            return "configuration change for node 0"
        if cc.type is ConfChangeType.ADD_LEARNER:
            if cc.node_id in self.members:
                return f"node {cc.node_id} is already a member"
        elif cc.type is ConfChangeType.ADD_VOTER:
            if cc.node_id in self.voters:
                return f"node {cc.node_id} is already a voter"
        elif cc.type is ConfChangeType.REMOVE:
            if cc.node_id not in self.members:
                return f"node {cc.node_id} is not a member"
            if self.voters == {cc.node_id}:
                return "cannot remove the last voter"
        return ""

    def after(self, cc: "ConfChange") -> "ConfState":
        """The configuration once ``cc`` is applied: the one place membership changes are
        worked out (the raft core, a restarted log and the store's member list all use it);
        a change raft refuses leaves it as it is."""
        if self.problem_with(cc):
            return self
        if cc.type is ConfChangeType.ADD_LEARNER:
            return ConfState(self.voters, self.learners | {cc.node_id})
        if cc.type is ConfChangeType.ADD_VOTER:
            return ConfState(self.voters | {cc.node_id}, self.learners - {cc.node_id})
        return ConfState(self.voters - {cc.node_id}, self.learners - {cc.node_id})


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The application's state after applying every entry up to ``index`` (whose term is
    ``term``), and the configuration in force at that point. ``data`` is opaque."""

    index: int
    term: int
    conf: ConfState
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class ConfChange:
    type: ConfChangeType
    node_id: int
    context: bytes = b""  # for the application (Swarm: the member's node ID and address)


@dataclass(slots=True)
class Message:
    type: MessageType
    to: int
    from_: int
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: list[Entry] = field(default_factory=list)
    commit: int = 0
    reject: bool = False
    reject_hint: int = 0
    # VOTE/PRE_VOTE: CAMPAIGN_TRANSFER when caused by TIMEOUT_NOW.
    # HEARTBEAT(_RESP): read-index sequence; READ_INDEX(_RESP): the requester's context.
    context: int = 0
    snapshot: Snapshot | None = None


CAMPAIGN_TRANSFER = 1


@dataclass(frozen=True, slots=True)
class ReadState:
    """A linearizable read with ``context`` may be served once ``index`` is applied."""

    context: int
    index: int


@dataclass(frozen=True, slots=True)
class SoftState:
    leader: int
    role: Role


@dataclass(slots=True)
class Ready:
    """One batch of work for the driver. In this order: persist ``snapshot``, ``entries``
    (replacing any stored entries from ``entries[0].index`` on) and ``hard_state`` in one
    durable write; then send ``messages``; then install ``snapshot`` into the application and
    apply ``committed_entries``; then call ``Core.advance(ready)``."""

    hard_state: HardState | None = None
    entries: list[Entry] = field(default_factory=list)
    snapshot: Snapshot | None = None
    committed_entries: list[Entry] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    read_states: list[ReadState] = field(default_factory=list)
    soft_state: SoftState | None = None

    @property
    def must_persist(self) -> bool:
        return self.hard_state is not None or bool(self.entries) or self.snapshot is not None


@dataclass(slots=True)
class PersistentState:
    """What storage gives back on restart: exactly what was durably written."""

    hard_state: HardState = field(default_factory=HardState)
    snapshot: Snapshot | None = None
    # The log holds entries offset+1 ... ; offset_term is the term of entry ``offset``
    # (0 for an empty log, else at most the snapshot's index).
    offset: int = 0
    offset_term: int = 0
    entries: list[Entry] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PeerStatus:
    match: int
    next: int
    state: ProgressState
    learner: bool
    recent_active: bool
    ticks_since_heard: int


@dataclass(frozen=True, slots=True)
class Status:
    id: int
    term: int
    vote: int
    role: Role
    leader: int
    commit: int
    applied: int
    last_index: int
    conf: ConfState
    removed: bool
    lead_transferee: int
    progress: dict[int, PeerStatus]  # the leader's view of every member; empty elsewhere


@dataclass(slots=True)
class RaftConfig:
    election_tick: int = 10  # Swarm's defaults
    heartbeat_tick: int = 1
    check_quorum: bool = True
    # A leader steps down after this many election timeouts in a row without hearing from
    # a quorum. etcd's one lets a single held-up turn depose a healthy leader: its followers'
    # answers wait unread behind the hold, and its ticks catch up first (issue 15: a new
    # leader taking 1,000 nodes' sessions stepped down 7 s after its election, twice). Two
    # were not enough either: under the same storm each answer took 1-2.5 s to arrive, and a
    # leader stepped down four times in a row, 4-5 s after each election, while its follower
    # went on following it (fleet-1000-s29-prof1). Five (5 s) is still half of Swarm's
    # (etcd's one election timeout, of 10 ticks of 1 s) and of the stand-in's limit below.
    check_quorum_misses: int = 5
    pre_vote: bool = True
    max_size_per_msg: int = 1 << 20  # bytes of entry data in one append (at least one entry)
    max_inflight: int = 256  # unacknowledged appends to one follower
    # In snapshot state with neither a report nor an answer for this long, probe again.
    snapshot_timeout_ticks: int = 100
    # Replicating, with the follower's match stuck below the leader's last index for this
    # long (an append was lost): probe again.
    stall_ticks: int = 5
    snapshot_interval: int = 10000  # driver: snapshot every N applied entries (Swarm)
    keep_entries: int = 500  # driver: entries kept behind a snapshot for slow followers
    # driver: snapshot also once the entries applied since the last snapshot hold this many
    # bytes, or as many as that snapshot, whichever is more. Every entry stays in memory until
    # a snapshot: one proposal of 200 task changes is about 133 KiB, so 10,000 entries could
    # hold 1.3 GiB (bench/memory.py). Measured against the last snapshot, the log held stays
    # near the state's own size, and snapshotting costs no more than writing the entries.
    snapshot_bytes: int = 64 << 20
    # driver: once writes have settled, snapshot a tail of at least this many bytes (or an
    # eighth of the last snapshot), so that a restart replays little (SnapshotPolicy).
    # Settled: under a 64th of that tail applied over the last ``settle_ticks`` (0: never).
    settled_snapshot_bytes: int = 1 << 20
    settle_ticks: int = 30
    keep_bytes: int = 16 << 20  # driver: of ``keep_entries``, at most this many bytes
    # wiring: for how many seconds after its event loop last turned a thread goes on sending a
    # leader's heartbeats for it (shoal.raft.stand_in): a loop held for seconds by a fleet's
    # reconnections keeps its leadership; one wedged for longer is replaced. Swarm's election
    # timeout (10 ticks of 1 s). 0: no such thread.
    stand_in_limit: float = 10.0


class RaftError(Unavailable):
    """A request the raft node cannot serve now (HTTP 503, gRPC UNAVAILABLE)."""


class NotLeader(RaftError):
    """This node cannot accept the request; ``leader`` is who can (0 if unknown)."""

    def __init__(self, leader: int = NONE, message: str = "") -> None:
        super().__init__(message or f"not the raft leader (leader: {leader or 'unknown'})")
        self.leader = leader


class ProposalDropped(RaftError):
    """The request was refused without being appended: it will never be committed."""

    def __init__(self, message: str = "raft: proposal dropped") -> None:
        super().__init__(message)


class CommitUnknown(RaftError):
    """The entry was appended but this node lost leadership (or stopped) before it committed;
    it may or may not be committed later."""

    def __init__(self, message: str = "raft: lost leadership before the entry committed") -> None:
        super().__init__(message)
