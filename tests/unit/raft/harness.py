"""Cores wired together by an instant, in-order network, for tests of one rule at a time.

Each node persists every Ready to a MemoryStorage before its messages go out, so ``crash``
and ``restart`` lose exactly what a real node would. The application is a list of applied
entry payloads; its snapshot is that list as JSON.
"""

import json
import random
from collections.abc import Callable, Iterable

from shoal.raft import codec
from shoal.raft.core import Core, bootstrap
from shoal.raft.storage import MemoryStorage
from shoal.raft.types import (
    ConfChange,
    ConfChangeType,
    Entry,
    EntryType,
    Message,
    PersistentState,
    RaftConfig,
    ReadState,
    Role,
)


def config(**kw: object) -> RaftConfig:
    cfg = RaftConfig(election_tick=10, heartbeat_tick=1)
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


class Cluster:
    def __init__(
        self,
        ids: Iterable[int] = (1, 2, 3),
        cfg: RaftConfig | None = None,
        seed: int = 0,
        states: dict[int, PersistentState] | None = None,
    ) -> None:
        self.cfg = cfg or config()
        self.seed = seed
        ids = list(ids)
        state = bootstrap({i: b"" for i in ids})
        self.storage: dict[int, MemoryStorage] = {
            i: MemoryStorage((states or {}).get(i, state)) for i in ids
        }
        self.cores: dict[int, Core] = {}
        self.applied: dict[int, list[bytes]] = {}
        self.read_states: dict[int, list[ReadState]] = {}
        self.cut: set[tuple[int, int]] = set()
        # Return False to drop a message; lets a test hold back one kind.
        self.filter: Callable[[Message], bool] | None = None
        self.sent: list[Message] = []
        for i in ids:
            self.start(i)
        self.settle()  # apply the bootstrap configuration

    # --- nodes ----------------------------------------------------------------------------------

    def start(self, i: int) -> Core:
        if i not in self.storage:
            self.storage[i] = MemoryStorage()
        state = self.storage[i].load()
        core = Core(i, self.cfg, random.Random(self.seed * 1000 + i), state)
        self.cores[i] = core
        self.applied[i] = json.loads(state.snapshot.data) if state.snapshot else []
        self.read_states[i] = []
        return core

    def crash(self, i: int) -> None:
        del self.cores[i]

    def add_node(self, i: int) -> Core:
        return self.start(i)

    # --- driving --------------------------------------------------------------------------------

    def flush(self, i: int) -> list[Message]:
        core = self.cores.get(i)
        out: list[Message] = []
        while core is not None and core.has_ready():
            rd = core.ready()
            self.storage[i].save(rd.hard_state, rd.entries, rd.snapshot)
            out.extend(rd.messages)
            if rd.snapshot is not None:
                self.applied[i] = json.loads(rd.snapshot.data)
            for e in rd.committed_entries:
                if e.type is EntryType.NORMAL and e.data:
                    self.applied[i].append(e.data.decode())
            self.read_states[i].extend(rd.read_states)
            core.advance(rd)
        return out

    def deliver(self, msgs: list[Message]) -> None:
        for m in msgs:
            self.sent.append(m)
            if (m.from_, m.to) in self.cut or m.to not in self.cores:
                continue
            if self.filter is not None and not self.filter(m):
                continue
            self.cores[m.to].step(m)

    def settle(self, max_rounds: int = 10000) -> None:
        for _ in range(max_rounds):
            msgs = [m for i in sorted(self.cores) for m in self.flush(i)]
            if not msgs:
                return
            self.deliver(msgs)
        raise AssertionError("cluster did not settle")

    def tick(self, i: int, n: int = 1) -> None:
        for _ in range(n):
            self.cores[i].tick()
            self.settle()

    def tick_all(self, n: int = 1) -> None:
        for _ in range(n):
            for i in sorted(self.cores):
                self.cores[i].tick()
            self.settle()

    def campaign(self, i: int) -> None:
        self.cores[i].campaign()
        self.settle()

    def propose(self, i: int, data: str) -> int:
        index = self.cores[i].propose(data.encode())
        self.settle()
        return index

    def change(self, i: int, kind: ConfChangeType, node: int) -> int:
        index = self.cores[i].propose_conf_change(ConfChange(kind, node))
        self.settle()
        return index

    def snapshot(self, i: int, keep: int = 0) -> None:
        core = self.cores[i]
        snap = core.create_snapshot(json.dumps(self.applied[i]).encode())
        offset = core.compact(max(0, snap.index - keep))
        self.storage[i].save_snapshot(snap, offset)

    # --- network --------------------------------------------------------------------------------

    def isolate(self, i: int) -> None:
        for j in self.storage:
            if j != i:
                self.cut.add((i, j))
                self.cut.add((j, i))

    def partition(self, *groups: Iterable[int]) -> None:
        sets = [set(g) for g in groups]
        for a in self.storage:
            for b in self.storage:
                if a != b and not any(a in g and b in g for g in sets):
                    self.cut.add((a, b))

    def heal(self) -> None:
        self.cut.clear()

    # --- queries --------------------------------------------------------------------------------

    def leaders(self) -> list[int]:
        return [i for i, c in self.cores.items() if c.role is Role.LEADER]

    def leader(self) -> int:
        best = max(
            (c for c in self.cores.values() if c.role is Role.LEADER),
            key=lambda c: c.term,
            default=None,
        )
        assert best is not None, "no leader"
        return best.id

    def elect(self, i: int) -> None:
        self.campaign(i)
        assert self.cores[i].role is Role.LEADER, f"{i} is {self.cores[i].role}"


def conf_entry(kind: ConfChangeType, node: int) -> bytes:
    return codec.encode_conf_change(ConfChange(kind, node))


def grow(state: PersistentState, term: int, n: int, data: str = "x") -> PersistentState:
    """``state`` with ``n`` more entries of ``term`` (and its term raised to at least it)."""
    last = state.offset + len(state.entries)
    entries = [
        Entry(last + k, term, EntryType.NORMAL, f"{data}{last + k}".encode())
        for k in range(1, n + 1)
    ]
    hs = state.hard_state
    return PersistentState(
        type(hs)(max(hs.term, term), hs.vote, hs.commit),
        state.snapshot,
        state.offset,
        state.offset_term,
        [*state.entries, *entries],
    )
