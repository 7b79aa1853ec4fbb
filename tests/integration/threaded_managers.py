"""Managers' raft seats in one process, each on an event loop of its own in a thread of its
own, so that one manager's loop can be held up (``stall``) while the others run: real
``Replica``s (SQLite, encryption at rest), the real ``Raft`` gRPC service on loopback with
mutual TLS under a root CA made here, joined as ``swarm join`` joins them.

Used by tests/integration/test_stalled_leader.py and bench/stalled_leader.py.
"""

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import grpc.aio

from shoal.api.objects import Node
from shoal.api.types import NodeRole
from shoal.ca.certificates import new_node_key, sign_node_certificate
from shoal.ca.rootca import create_root_ca
from shoal.clock import SystemClock
from shoal.manager.consensus.replica import Replica
from shoal.manager.consensus.service import RaftService
from shoal.raft.types import RaftConfig
from shoal.rpc import TLSMaterial, Transport
from shoal.store import MemoryStore

T = TypeVar("T")
CLUSTER_ID = "threadedcluster"


class ThreadedManager:
    def __init__(self, name: str, state_dir: Path, tls: TLSMaterial, config: RaftConfig) -> None:
        self.name = name
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()
        self.server: grpc.aio.Server | None = None
        self.addr = ""

        async def build() -> Replica:
            clock = SystemClock()
            transport = Transport(tls=tls, node_id=name)
            self.server = transport.server()
            port = transport.add_port(self.server, "127.0.0.1:0")
            self.addr = f"127.0.0.1:{port}"
            replica = Replica(
                MemoryStore(clock=clock), state_dir, name, self.addr, transport, clock, config
            )
            RaftService(replica).add_to_server(self.server)
            await self.server.start()
            return replica

        self.replica = self.call(build)

    def call(self, fn: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
        """Run ``fn()`` on this manager's loop; its result."""

        async def run() -> T:
            return await fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def get(self, fn: Callable[[], T]) -> T:
        """Evaluate ``fn()`` on this manager's loop (between two of its steps)."""

        async def run() -> T:
            return fn()

        return self.call(run)

    def stall(self, seconds: float, spin: bool = False) -> None:
        """Hold this manager's event loop for ``seconds`` from its next turn: sleeping (the
        interpreter lock is free) or ``spin``ning in Python (it is held, released only at
        the interpreter's switch interval, as by a loop busy with work)."""

        def hold() -> None:
            end = time.monotonic() + seconds
            if not spin:
                time.sleep(seconds)
            while time.monotonic() < end:
                pass

        self.loop.call_soon_threadsafe(hold)

    @property
    def leader_id(self) -> int:
        return self.get(lambda: self.replica.leader_id)

    @property
    def term(self) -> int:
        return self.get(lambda: self.replica.node.term if self.replica.node else 0)

    def stop(self) -> None:
        async def stop() -> None:
            await self.replica.stop()
            if self.server is not None:
                await self.server.stop(None)

        try:
            self.call(stop)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


def manager_tls(names: list[str]) -> dict[str, TLSMaterial]:
    now = dt.datetime.now(dt.UTC)
    root = create_root_ca(now)
    out = {}
    for name in names:
        key = new_node_key()
        cert = sign_node_certificate(
            key.csr_pem,
            root.cert_pem,
            root.key_pem,
            name,
            NodeRole.MANAGER,
            CLUSTER_ID,
            dt.timedelta(hours=1),
            now,
        )
        out[name] = TLSMaterial(cert=cert, key=key.key_pem, ca=root.cert_pem)
    return out


def start_managers(root: Path, config: RaftConfig, count: int = 3) -> list[ThreadedManager]:
    """``count`` managers, the first the founder and leader, the others voters joined
    through it; stop them with ``stop_managers``."""
    names = [f"m{i}" for i in range(1, count + 1)]
    tls = manager_tls(names)
    managers: list[ThreadedManager] = []
    try:
        for name in names:
            managers.append(ThreadedManager(name, root / name, tls[name], config))
        first = managers[0]
        first.call(first.replica.bootstrap)
        for m in managers[1:]:
            _join(first, m)
        return managers
    except BaseException:
        stop_managers(managers)
        raise


def _join(leader: ThreadedManager, m: ThreadedManager) -> None:
    """As the manager does on ``swarm join``: the node is a manager in the store, asks to
    join; the leader promotes it once it has caught up (the manager's role reconciler's
    work, done here)."""
    node = Node(ID=m.name, Role=NodeRole.MANAGER)
    leader.call(lambda: leader.replica.store.update(lambda tx: tx.create(node)))
    joined = asyncio.run_coroutine_threadsafe(m.replica.join([leader.addr]), m.loop)
    deadline = time.monotonic() + 30.0
    while not joined.done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{m.name} did not become a voter")
        raft_id = m.replica.raft_id
        if raft_id and leader.get(lambda r=raft_id: leader.replica.caught_up(r)):
            leader.call(lambda r=raft_id: leader.replica.promote_learner(r))
        time.sleep(0.05)
    joined.result()


def stop_managers(managers: list[ThreadedManager]) -> None:
    for m in managers:
        m.stop()


def leaders(managers: list[ThreadedManager]) -> set[int]:
    """The leader each manager names (a set of one when they agree)."""
    return {m.leader_id for m in managers}


def wait_agreed_leader(managers: list[ThreadedManager], timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        seen = leaders(managers)
        if len(seen) == 1 and 0 not in seen:
            leader = seen.pop()
            holder = next(m for m in managers if m.replica.raft_id == leader)
            if holder.get(lambda h=holder: h.replica.is_leader):
                return leader
        if time.monotonic() > deadline:
            raise TimeoutError(f"no agreed leader: {seen}")
        time.sleep(0.05)
