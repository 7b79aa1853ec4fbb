"""A deterministic simulation of raft nodes on a hostile network, checked for safety.

One seed fixes everything: the cluster size, the network's behaviour (loss, duplication,
delay, reordering), the faults (partitions, crashes at any point of a Ready's processing,
membership changes, leadership transfers) and the clients' workload. Each node runs the real
``Core`` with a ``MemoryStorage`` written exactly where the real driver fsyncs (the whole
Ready, before any of its messages leave), so a crash loses what a real crash loses.

Checked on every run:
- election safety: at most one leader per term;
- log matching / leader completeness: every entry any node knows as committed is the same
  everywhere, for ever, and is in the log of every later leader;
- state machine safety: every node applies the same entries in the same order (the KV state
  after index i hashes the same on every node, snapshots included);
- linearizability of the clients' reads and writes (reads use ReadIndex);
- liveness: once the network heals and every node is back, a leader is elected, a write
  commits, and every member converges.

Run many seeds:   python -m tests.unit.raft.simulate --seeds 5000 [--start 0] [--jobs 2]
Reproduce one:    python -m tests.unit.raft.simulate --seed 1234 --trace
"""

import argparse
import hashlib
import heapq
import json
import random
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shoal.raft.codec import decode_conf_change
from shoal.raft.core import Core, bootstrap
from shoal.raft.storage import MemoryStorage
from shoal.raft.types import (
    ConfChange,
    ConfChangeType,
    EntryType,
    Message,
    MessageType,
    NotLeader,
    ProposalDropped,
    RaftConfig,
    RaftError,
    Role,
)
from tests.unit.raft.linearizability import Op, check

KEYS = ("x", "y", "z")
CRASH_POINTS = ("now", "before_persist", "after_persist", "mid_send", "before_apply")
# Crash right after the node does something that matters (a targeted nemesis): granted a
# vote, became leader, advanced its commit index as leader, received a snapshot.
CRASH_TRIGGERS = ("vote", "leader", "commit", "snapshot")


class SafetyViolation(AssertionError):
    pass


@dataclass
class Params:
    n: int
    drop: float
    dup: float
    long_delay: float  # chance a message is held back for a long time (reordering)
    replay: float  # chance a message is delivered again much later (a stale duplicate)
    max_size: int
    snapshot_interval: int
    keep: int
    clients: int
    chaos_ticks: int
    partitions: bool
    crashes: bool
    membership: bool
    transfers: bool
    fault_gap: tuple[float, float]  # ticks between faults
    tick_jitter: float  # how much the nodes' tick periods differ
    election_tick: int  # short: many elections, many split votes
    pre_vote: bool
    check_quorum: bool
    max_inflight: int  # 2: flow control kicks in constantly

    @classmethod
    def draw(cls, rng: random.Random) -> "Params":
        p = cls._draw(rng)
        if p.membership and not p.pre_vote and not p.check_quorum:
            # Without either, a removed member that never learned of its removal disrupts the
            # cluster for ever (each of its timeouts bumps the term): liveness then relies on
            # the transport turning it away, as swarmkit's does. Test what we ship.
            p.check_quorum = True
        return p

    @classmethod
    def _draw(cls, rng: random.Random) -> "Params":
        return cls(
            n=rng.choice((3, 5)),
            drop=rng.choice((0.0, 0.01, 0.05, 0.15)),
            dup=rng.choice((0.0, 0.02, 0.1)),
            long_delay=rng.choice((0.0, 0.02, 0.1)),
            replay=rng.choice((0.0, 0.005, 0.03)),
            max_size=rng.choice((1, 300, 1 << 20)),
            snapshot_interval=rng.choice((7, 25, 100000)),
            keep=rng.choice((0, 3, 20)),
            clients=rng.choice((2, 3, 4)),
            chaos_ticks=rng.choice((200, 300)),
            partitions=rng.random() < 0.8,
            crashes=rng.random() < 0.8,
            membership=rng.random() < 0.5,
            transfers=rng.random() < 0.5,
            fault_gap=rng.choice(((5.0, 40.0), (1.0, 12.0))),
            tick_jitter=rng.choice((0.001, 0.05)),
            election_tick=rng.choice((10, 10, 3)),
            pre_vote=rng.random() < 0.7,
            check_quorum=rng.random() < 0.7,
            max_inflight=rng.choice((256, 256, 2)),
        )


@dataclass
class Pending:
    op_id: int
    client: int
    kind: str
    key: str
    value: Any
    invoke: float
    done: bool = False


@dataclass
class SimNode:
    id: int
    storage: MemoryStorage
    core: Core | None = None
    incarnation: int = 0
    tick_period: float = 1.0
    kv: dict[str, str] = field(default_factory=dict)
    last_snap: int = 0
    writes: dict[int, tuple[int, Pending]] = field(default_factory=dict)  # index -> (term, op)
    reads: dict[int, Pending] = field(default_factory=dict)  # read context -> op
    ready_reads: list[tuple[int, Pending]] = field(default_factory=list)  # (index, op)
    crash_at: str | None = None
    crash_when: str | None = None
    checked_commit: int = 0
    decommissioned: bool = False
    # Members this node applied the removal of: the transport turns their messages away, as
    # shoal's RaftService (and swarmkit's) does. Kept in the snapshot, as the manager's is.
    removed: set[int] = field(default_factory=set)

    @property
    def alive(self) -> bool:
        return self.core is not None


class Simulation:
    def __init__(self, seed: int, params: Params | None = None, trace_all: bool = False) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.p = params or Params.draw(self.rng)
        self.cfg = RaftConfig(
            election_tick=self.p.election_tick,
            heartbeat_tick=1,
            pre_vote=self.p.pre_vote,
            check_quorum=self.p.check_quorum,
            max_inflight=self.p.max_inflight,
            max_size_per_msg=self.p.max_size,
            snapshot_timeout_ticks=30,
            stall_ticks=5,
        )
        self.now = 0.0
        self._events: list[tuple[float, int, Callable[..., None], tuple]] = []
        self._seq = 0
        self.trace_lines: deque[str] | list[str] = [] if trace_all else deque(maxlen=400)
        self.nodes: dict[int, SimNode] = {}
        self.next_id = self.p.n + 1
        self.cut: set[tuple[int, int]] = set()
        self.drop, self.dup, self.long_delay = self.p.drop, self.p.dup, self.p.long_delay
        self.replay = self.p.replay
        # checks
        self.leaders_by_term: dict[int, int] = {}
        self.committed: dict[int, tuple[int, int, bytes]] = {}  # index -> (term, type, data)
        self.state_hash: dict[int, str] = {}  # applied index -> hash of the KV state
        self.history: list[Op] = []
        self.op_seq = 0
        self.client_leader: dict[int, int] = {}
        self.stats = {
            "delivered": 0,
            "dropped": 0,
            "crashes": 0,
            "elections": 0,
            "acked": 0,
            "snap_installs": 0,
            "conf_changes": 0,
            "transfers": 0,
            "split_votes": 0,
            "refused_removed": 0,
        }
        self.candidates: dict[int, set[int]] = {}
        self.chaos = True
        state = bootstrap({i: b"" for i in range(1, self.p.n + 1)})
        for i in range(1, self.p.n + 1):
            self._add_node(i, MemoryStorage(state))

    # --- events -------------------------------------------------------------------------------

    def at(self, t: float, fn: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._events, (t, self._seq, fn, args))

    def trace(self, text: str) -> None:
        self.trace_lines.append(f"{self.now:9.3f} {text}")

    def run_until(self, t_end: float) -> None:
        while self._events and self._events[0][0] <= t_end:
            t, _, fn, args = heapq.heappop(self._events)
            self.now = t
            fn(*args)
        self.now = t_end

    # --- nodes --------------------------------------------------------------------------------

    def _add_node(self, i: int, storage: MemoryStorage) -> SimNode:
        j = self.p.tick_jitter
        node = SimNode(i, storage, tick_period=self.rng.uniform(1 - j, 1 + j))
        self.nodes[i] = node
        self._start(node)
        return node

    def _start(self, node: SimNode) -> None:
        node.incarnation += 1
        state = node.storage.load()
        rng = random.Random(f"{self.seed}/{node.id}/{node.incarnation}")
        node.core = Core(node.id, self.cfg, rng, state)
        node.kv = {}
        node.removed = set()
        node.last_snap = 0
        if state.snapshot is not None:
            body = json.loads(state.snapshot.data)
            node.kv = body["kv"]
            node.removed = set(body["removed"])
            node.last_snap = state.snapshot.index
        node.writes, node.reads, node.ready_reads = {}, {}, []
        node.crash_at = node.crash_when = None
        node.checked_commit = 0
        self.trace(
            f"n{node.id} start #{node.incarnation} term={state.hard_state.term} "
            f"commit={state.hard_state.commit} last={state.offset + len(state.entries)}"
        )
        self.at(
            self.now + self.rng.uniform(0, node.tick_period), self._tick, node.id, node.incarnation
        )
        self._drain(node)

    def _crash(self, node: SimNode, point: str) -> None:
        self.trace(f"n{node.id} CRASH ({point})")
        self.stats["crashes"] += 1
        node.core = None
        node.crash_at = node.crash_when = None
        node.writes, node.reads, node.ready_reads = {}, {}, []

    def _tick(self, i: int, incarnation: int) -> None:
        node = self.nodes[i]
        if node.core is None or node.incarnation != incarnation:
            return
        node.core.tick()
        self._drain(node)
        self.at(self.now + node.tick_period, self._tick, i, incarnation)

    def _drain(self, node: SimNode) -> None:
        while node.core is not None and node.core.has_ready():
            self._handle_ready(node)
        if node.core is not None:
            self._check_node(node)

    def _handle_ready(self, node: SimNode) -> None:
        core = node.core
        assert core is not None
        rd = core.ready()
        point = node.crash_at
        if point == "before_persist":
            return self._crash(node, point)
        node.storage.save(rd.hard_state, rd.entries, rd.snapshot)
        if point == "after_persist":
            return self._crash(node, point)
        if (
            node.crash_when is not None
            and node.crash_when != "vote"
            and self._triggered(node, rd)
            and self.rng.random() < 0.5
        ):
            self.at(self.now + self._downtime(), self._restart, node.id)
            return self._crash(node, f"after {node.crash_when}, before sending")
        for k, m in enumerate(rd.messages):
            if point == "mid_send" and k == len(rd.messages) // 2:
                return self._crash(node, point)
            self._send(node, m)
        if point == "before_apply":
            return self._crash(node, point)
        if node.crash_when is not None and self._triggered(node, rd):
            self.at(self.now + self._downtime(), self._restart, node.id)
            return self._crash(node, f"after {node.crash_when}")
        if rd.soft_state is not None:
            self.trace(
                f"n{node.id} {rd.soft_state.role} term={core.term} leader={rd.soft_state.leader}"
            )
            if rd.soft_state.role is Role.LEADER:
                self.stats["elections"] += 1
                self._check_new_leader(node)
            elif rd.soft_state.role is Role.CANDIDATE:
                rivals = self.candidates.setdefault(core.term, set())
                rivals.add(node.id)
                if len(rivals) == 2:
                    self.stats["split_votes"] += 1
        if rd.snapshot is not None:
            self._install(node, rd.snapshot.index, rd.snapshot.term, rd.snapshot.data)
        for e in rd.committed_entries:
            self._apply(node, e.index, e.term, e.type, e.data)
        for rs in rd.read_states:
            op = node.reads.pop(rs.context, None)
            if op is not None:
                node.ready_reads.append((rs.index, op))
        core.advance(rd)
        self._serve_reads(node)
        if core.log.applied - node.last_snap >= self.p.snapshot_interval:
            body = {"kv": node.kv, "index": core.log.applied, "removed": sorted(node.removed)}
            snap = core.create_snapshot(json.dumps(body).encode())
            offset = core.compact(max(0, snap.index - self.p.keep))
            node.storage.save_snapshot(snap, offset)
            node.last_snap = snap.index
            self.trace(f"n{node.id} snapshot at {snap.index}, log from {offset[0] + 1}")

    def _triggered(self, node: SimNode, rd: Any) -> bool:
        when = node.crash_when
        if when == "vote":
            return any(m.type is MessageType.VOTE_RESP and not m.reject for m in rd.messages)
        if when == "leader":
            return rd.soft_state is not None and rd.soft_state.role is Role.LEADER
        if when == "commit":
            return node.core is not None and node.core.is_leader and rd.hard_state is not None
        return rd.snapshot is not None

    # --- the state machine ----------------------------------------------------------------------

    def _install(self, node: SimNode, index: int, term: int, data: bytes) -> None:
        self.stats["snap_installs"] += 1
        body = json.loads(data)
        if body["index"] != index:
            raise SafetyViolation(f"n{node.id}: snapshot {index} holds state of {body['index']}")
        self._record(index, term, None, None, f"snapshot on n{node.id}")
        node.kv = body["kv"]
        node.removed = set(body["removed"])
        node.last_snap = index
        self._check_hash(node, index)
        self.trace(f"n{node.id} installed snapshot {index}")

    def _apply(self, node: SimNode, index: int, term: int, kind: EntryType, data: bytes) -> None:
        self._record(index, term, kind, data, f"applied on n{node.id}")
        if kind is EntryType.NORMAL and data:
            cmd = json.loads(data)
            node.kv[cmd["k"]] = cmd["v"]
        elif kind is EntryType.CONF_CHANGE and node.core is not None:
            cc = decode_conf_change(data)
            # As the manager's ReplicatedLog: only a removal raft applies (it refuses some).
            if cc.type is ConfChangeType.REMOVE and not node.core.conf.problem_with(cc):
                node.removed.add(cc.node_id)
        self._check_hash(node, index)
        pending = node.writes.pop(index, None)
        if pending is not None:
            term_proposed, op = pending
            if term_proposed == term:
                self._respond(op, True)
            else:
                self._respond(op, False)  # overwritten: it will never commit

    def _check_hash(self, node: SimNode, index: int) -> None:
        h = hashlib.sha1(json.dumps(node.kv, sort_keys=True).encode()).hexdigest()[:12]
        prev = self.state_hash.setdefault(index, h)
        if prev != h:
            raise SafetyViolation(f"n{node.id}: state after {index} is {h}, elsewhere {prev}")

    def _record(self, index: int, term: int, kind: Any, data: Any, where: str) -> None:
        known = self.committed.get(index)
        if known is None:
            self.committed[index] = (term, kind, data)
            return
        if known[0] != term or (
            kind is not None and known[1] is not None and (known[1], known[2]) != (kind, data)
        ):
            raise SafetyViolation(
                f"committed entry {index} changed: was term {known[0]}, now term {term} ({where})"
            )
        if known[1] is None and kind is not None:
            self.committed[index] = (term, kind, data)

    def _check_node(self, node: SimNode) -> None:
        core = node.core
        assert core is not None
        if core.role is Role.LEADER:
            holder = self.leaders_by_term.setdefault(core.term, node.id)
            if holder != node.id:
                raise SafetyViolation(f"two leaders in term {core.term}: n{holder} and n{node.id}")
        log = core.log
        for i in range(max(node.checked_commit, log.offset) + 1, log.committed + 1):
            e = log.entry(i)
            self._record(i, e.term, e.type, e.data, f"committed on n{node.id}")
        node.checked_commit = max(node.checked_commit, log.committed)

    def _check_new_leader(self, node: SimNode) -> None:
        log = node.core.log  # type: ignore[union-attr]
        for i, (term, _kind, _data) in self.committed.items():
            if i <= log.offset:
                continue
            if log.term(i) != term:
                raise SafetyViolation(
                    f"leader n{node.id} of term {node.core.term} lacks committed entry {i} "  # type: ignore[union-attr]
                    f"(term {term}; it has {log.term(i)})"
                )

    # --- network ------------------------------------------------------------------------------

    def _send(self, node: SimNode, m: Message) -> None:
        copies = 1
        if self.rng.random() < self.drop:
            copies = 0
        elif self.rng.random() < self.dup:
            copies = 2
        if copies == 0:
            self.stats["dropped"] += 1
            if m.type is MessageType.SNAP:
                self.at(
                    self.now + 0.5, self._report_snapshot, node.id, node.incarnation, m.to, False
                )
        for _ in range(copies):
            delay = self.rng.uniform(0.01, 0.3)
            if self.rng.random() < self.long_delay:
                delay += self.rng.uniform(1, 8)
            self.at(self.now + delay, self._deliver, m, node.incarnation)
        if self.rng.random() < self.replay:
            # Long after: whatever it says is stale by then. Nobody hears how it went.
            self.at(self.now + self.rng.uniform(5, 100), self._deliver, m, -1)

    def _deliver(self, m: Message, sender_incarnation: int) -> None:
        sender = self.nodes[m.from_]
        node = self.nodes.get(m.to)
        lost = node is None or node.core is None or (m.from_, m.to) in self.cut
        if not lost and m.from_ in node.removed:  # type: ignore[union-attr]
            self.stats["refused_removed"] += 1
            lost = True
        if m.type is MessageType.SNAP:
            self.at(
                self.now + 0.1, self._report_snapshot, m.from_, sender_incarnation, m.to, not lost
            )
        if lost:
            self.stats["dropped"] += 1
            if sender.core is not None and sender.incarnation == sender_incarnation:
                sender.core.report_unreachable(m.to)
            return
        self.stats["delivered"] += 1
        node.core.step(m)  # type: ignore[union-attr]
        self._drain(node)  # type: ignore[arg-type]

    def _report_snapshot(self, i: int, incarnation: int, to: int, ok: bool) -> None:
        node = self.nodes[i]
        if node.core is not None and node.incarnation == incarnation:
            node.core.report_snapshot(to, ok)
            self._drain(node)

    # --- clients ------------------------------------------------------------------------------

    def _client(self, c: int) -> None:
        if not self.chaos and self.now > self.client_stop:
            return
        self.op_seq += 1
        key = self.rng.choice(KEYS)
        kind = "w" if self.rng.random() < 0.5 else "r"
        value = f"c{c}.{self.op_seq}" if kind == "w" else None
        op = Pending(self.op_seq, c, kind, key, value, self.now)
        target = self.client_leader.get(c) or self.rng.choice(sorted(self.nodes))
        node = self.nodes[target]
        try:
            if node.core is None:
                raise NotLeader(0)
            if kind == "w":
                data = json.dumps({"k": key, "v": value}).encode()
                index = node.core.propose(data)
                node.writes[index] = (node.core.term, op)
            else:
                node.core.read_index(op.op_id)
                node.reads[op.op_id] = op
        except (NotLeader, ProposalDropped) as err:
            leader = getattr(err, "leader", 0)
            self.client_leader[c] = leader if leader and leader != target else 0
            self.at(self.now + self.rng.uniform(0.1, 1.0), self._client, c)
            return
        self.trace(f"c{c} invoke {kind} {key} {value or ''} on n{target} (op {op.op_id})")
        self.at(self.now + 40, self._timeout, op)
        self._drain(node)

    def _respond(self, op: Pending, ok: bool, value: Any = None) -> None:
        if op.done:
            return
        op.done = True
        if ok:
            self.stats["acked"] += 1
            v = op.value if op.kind == "w" else value
            self.history.append(Op(op.client, op.kind, op.key, v, op.invoke, self.now))
            self.trace(f"c{op.client} ok {op.kind} {op.key} {v} (op {op.op_id})")
        else:
            self.trace(f"c{op.client} failed {op.kind} (op {op.op_id})")
            self.client_leader[op.client] = 0
        self.at(self.now + self.rng.uniform(0.0, 2.0), self._client, op.client)

    def _timeout(self, op: Pending) -> None:
        if op.done:
            return
        op.done = True
        if op.kind == "w":
            self.history.append(Op(op.client, "w", op.key, op.value, op.invoke, None))
        self.trace(f"c{op.client} timeout {op.kind} (op {op.op_id})")
        self.client_leader[op.client] = 0
        self.at(self.now + self.rng.uniform(0.0, 2.0), self._client, op.client)

    def _serve_reads(self, node: SimNode) -> None:
        core = node.core
        if core is None or not node.ready_reads:
            return
        still = []
        for index, op in node.ready_reads:
            if core.log.applied >= index:
                self._respond(op, True, node.kv.get(op.key))
            else:
                still.append((index, op))
        node.ready_reads = still

    # --- faults -------------------------------------------------------------------------------

    def _fault(self) -> None:
        if not self.chaos:
            return
        choices = []
        if self.p.partitions:
            choices += ["partition", "heal", "isolate", "isolate_leader"]
        if self.p.crashes:
            choices += ["crash", "crash", "crash_leader", "crash_trigger"]
        if choices:
            getattr(self, "_fault_" + self.rng.choice(choices))()
        self.at(self.now + self.rng.uniform(*self.p.fault_gap), self._fault)

    def _fault_partition(self) -> None:
        ids = sorted(self.nodes)
        self.rng.shuffle(ids)
        k = self.rng.randrange(1, len(ids))
        a, b = set(ids[:k]), set(ids[k:])
        self.cut = {(x, y) for x in a for y in b} | {(y, x) for x in a for y in b}
        self.trace(f"PARTITION {sorted(a)} | {sorted(b)}")
        self.at(self.now + self.rng.uniform(10, 80), self._fault_heal)

    def _fault_isolate(self) -> None:
        x = self.rng.choice(sorted(self.nodes))
        # sometimes only one direction: the node hears but is not heard, or the reverse
        one_way = self.rng.random() < 0.3
        out = {(x, y) for y in self.nodes if y != x}
        inc = {(y, x) for y in self.nodes if y != x}
        self.cut |= (out if self.rng.random() < 0.5 else inc) if one_way else out | inc
        self.trace(f"ISOLATE n{x}{' one-way' if one_way else ''}")
        self.at(self.now + self.rng.uniform(10, 80), self._fault_heal)

    def _fault_isolate_leader(self) -> None:
        # A leader cut off keeps taking proposals it cannot commit: divergent log tails.
        leader = self._leader()
        if leader is None:
            return
        x = leader.id
        self.cut |= {(x, y) for y in self.nodes if y != x} | {(y, x) for y in self.nodes if y != x}
        self.trace(f"ISOLATE leader n{x}")
        self.at(self.now + self.rng.uniform(3, 40), self._fault_heal)

    def _fault_heal(self) -> None:
        if self.cut:
            self.trace("HEAL")
        self.cut = set()

    def _fault_crash(self, node: SimNode | None = None) -> None:
        alive = [n for n in sorted(self.nodes) if self.nodes[n].alive]
        if node is None:
            if not alive:
                return
            node = self.nodes[self.rng.choice(alive)]
        point = self.rng.choice(CRASH_POINTS)
        if point == "now":
            self._crash(node, point)
        else:
            node.crash_at = point  # at that point of its next Ready
        self.at(self.now + self._downtime(), self._restart, node.id)

    def _fault_crash_leader(self) -> None:
        leader = self._leader()
        if leader is not None:
            self._fault_crash(leader)

    def _fault_crash_trigger(self) -> None:
        alive = [n for n in sorted(self.nodes) if self.nodes[n].alive]
        if not alive:
            return
        node = self.nodes[self.rng.choice(alive)]
        node.crash_when = self.rng.choice(CRASH_TRIGGERS)
        self.at(self.now + self.rng.uniform(5, 50), self._restart, node.id)

    def _downtime(self) -> float:
        # Often back at once: a vote or an ack forgotten matters most while the election or
        # the replication it belongs to is still going on.
        r = self.rng.random()
        if r < 0.2:
            return self.rng.uniform(0.001, 0.2)  # between two deliveries: safety is timeless
        if r < 0.5:
            return self.rng.uniform(0.2, 3)
        return self.rng.uniform(3, 60)

    def _restart(self, i: int) -> None:
        node = self.nodes[i]
        if node.core is None and not node.decommissioned:
            self._start(node)
        elif node.core is not None:
            node.crash_at = node.crash_when = None  # it never got to that point

    # --- operator: membership and leadership ------------------------------------------------------

    def _leader(self) -> SimNode | None:
        best = None
        for i in sorted(self.nodes):
            n = self.nodes[i]
            if n.core is not None and n.core.role is Role.LEADER:
                if best is None or n.core.term > best.core.term:  # type: ignore[union-attr]
                    best = n
        return best

    def _operator(self) -> None:
        if not self.chaos:
            return
        leader = self._leader()
        if leader is not None:
            core = leader.core
            assert core is not None
            actions = []
            if self.p.transfers:
                actions.append("transfer")
            if self.p.membership:
                actions.append("membership")
            if actions and self.rng.choice(actions) == "transfer":
                to = self.rng.choice(sorted(core.conf.voters))
                try:
                    core.transfer_leadership(to)
                    self.stats["transfers"] += 1
                    self.trace(f"OPERATOR transfer n{leader.id} -> n{to}")
                except RaftError:
                    pass
            elif actions:
                self._membership_step(leader)
            self._drain(leader)
        self.at(self.now + self.rng.uniform(10, 40), self._operator)

    def _membership_step(self, leader: SimNode) -> None:
        core = leader.core
        assert core is not None
        conf = core.conf
        cc = None
        caught_up = [
            i
            for i in sorted(conf.learners)
            if i in core.prs and core.prs[i].match >= core.log.committed
        ]
        if caught_up:
            cc = ConfChange(ConfChangeType.ADD_VOTER, caught_up[0])
        elif conf.learners:
            return  # wait for the learner
        elif len(conf.voters) > self.p.n - 1 and len(conf.voters) >= 3:
            cc = ConfChange(ConfChangeType.REMOVE, self.rng.choice(sorted(conf.voters)))
        else:
            new = self.next_id
            if new not in self.nodes:
                self._add_node(new, MemoryStorage())
            cc = ConfChange(ConfChangeType.ADD_LEARNER, new)
        try:
            core.propose_conf_change(cc)
        except RaftError:
            return
        if cc.type is ConfChangeType.ADD_LEARNER:
            self.next_id += 1
        self.stats["conf_changes"] += 1
        self.trace(f"OPERATOR {cc.type.name} n{cc.node_id} via n{leader.id}")

    # --- the run ------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        p = self.p
        self.trace(f"seed {self.seed}: {p}")
        for c in range(1, p.clients + 1):
            self.at(self.rng.uniform(0, 5), self._client, c)
        self.at(self.rng.uniform(5, 30), self._fault)
        self.at(self.rng.uniform(20, 60), self._operator)
        self.client_stop = p.chaos_ticks + 60.0
        self.run_until(p.chaos_ticks)

        # Heal: a clean network and every node back; liveness must follow.
        self.chaos = False
        self.trace("=== chaos over: heal, restart, quiet network ===")
        self.cut = set()
        self.drop = self.dup = self.long_delay = self.replay = 0.0
        for i in sorted(self.nodes):
            node = self.nodes[i]
            node.crash_at = None
            if node.core is None:
                self._start(node)
        t_heal = self.now
        self.run_until(t_heal + 100)
        # any learner left behind is promoted, so that every live node ends a voting member
        leader = self._leader()
        if leader is None:
            raise SafetyViolation("liveness: no leader 100 ticks after healing")
        self._final_write(leader)
        self.run_until(t_heal + 200)
        self._check_end()
        check(self.history)
        return self.stats

    def _final_write(self, leader: SimNode) -> None:
        core = leader.core
        assert core is not None
        self.final_value = f"final.{self.seed}"
        self.final_index = core.propose(json.dumps({"k": "final", "v": self.final_value}).encode())
        self.final_term = core.term
        self.trace(f"final write at {self.final_index} via n{leader.id}")
        self._drain(leader)

    def _check_end(self) -> None:
        leader = self._leader()
        if leader is None:
            raise SafetyViolation("liveness: no leader at the end")
        core = leader.core
        assert core is not None
        entry = self.committed.get(self.final_index)
        if entry is None or entry[0] != self.final_term:
            raise SafetyViolation("liveness: the final write did not commit")
        applied = core.log.applied
        for i in sorted(core.conf.members):
            node = self.nodes[i]
            if node.core is None:
                raise SafetyViolation(f"n{i} is a member but down at the end")
            if node.core.log.applied < self.final_index:
                raise SafetyViolation(f"liveness: n{i} applied only {node.core.log.applied}")
            if node.kv.get("final") != self.final_value:
                raise SafetyViolation(f"n{i} did not apply the final write")
            if node.core.log.applied == applied and node.kv != leader.kv:
                raise SafetyViolation(f"n{i} and leader n{leader.id} differ at {applied}")


def run_seed(seed: int, trace_all: bool = False) -> dict[str, Any]:
    sim = Simulation(seed, trace_all=trace_all)
    try:
        return sim.run()
    except Exception as err:
        lines = list(sim.trace_lines)
        raise SafetyViolation(
            f"seed {seed} failed: {type(err).__name__}: {err}\n"
            f"reproduce: python -m tests.unit.raft.simulate --seed {seed} --trace\n"
            f"--- last {len(lines)} trace lines ---\n" + "\n".join(lines)
        ) from err


def _worker(args: tuple[int, int]) -> list[tuple[int, str]]:
    start, count = args
    failures = []
    for seed in range(start, start + count):
        try:
            run_seed(seed)
        except SafetyViolation as err:
            failures.append((seed, str(err).splitlines()[0]))
    return failures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seed", type=int, help="run one seed (with --trace: print its whole trace)")
    ap.add_argument("--seeds", type=int, default=100, help="how many seeds to run")
    ap.add_argument("--start", type=int, default=0, help="first seed")
    ap.add_argument("--jobs", type=int, default=1, help="processes")
    ap.add_argument("--trace", action="store_true")
    args = ap.parse_args(argv)
    if args.seed is not None:
        sim = Simulation(args.seed, trace_all=args.trace)
        try:
            stats = sim.run()
        except Exception as err:
            print("\n".join(sim.trace_lines))
            print(f"seed {args.seed} FAILED: {type(err).__name__}: {err}")
            return 1
        if args.trace:
            print("\n".join(sim.trace_lines))
        print(f"seed {args.seed} ok: {sim.p}\n{stats}")
        return 0
    t0 = time.monotonic()
    chunk = max(1, min(50, args.seeds // max(1, args.jobs * 4)))
    work = [
        (s, min(chunk, args.start + args.seeds - s))
        for s in range(args.start, args.start + args.seeds, chunk)
    ]
    failures: list[tuple[int, str]] = []
    if args.jobs > 1:
        from multiprocessing import Pool

        with Pool(args.jobs) as pool:
            for f in pool.imap_unordered(_worker, work):
                failures.extend(f)
    else:
        for w in work:
            failures.extend(_worker(w))
    elapsed = time.monotonic() - t0
    for _seed, line in sorted(failures):
        print(line)
    print(f"{args.seeds} seeds from {args.start}: {len(failures)} failed, {elapsed:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
