"""Several RaftNodes in one event loop on a FakeClock, messages through the codec: the harness
of the raft node's tests and of the store replicated through it (tests/unit/consensus).

Subclasses say what runs on each node (``state_machine``) and where it keeps its log
(``storage``); the rest (the network, starting and stopping, letting time pass) is here.
"""

import asyncio
import random
from collections.abc import Callable
from typing import Any

from shoal.clock import FakeClock
from shoal.raft import codec
from shoal.raft.node import RaftNode
from shoal.raft.storage import AsyncStorage, MemoryStorage
from shoal.raft.types import Message, PersistentState, RaftConfig

TICK = 0.1


class InstantNet:
    """Delivers messages through the codec on the next loop iteration; ``cut`` nodes neither
    send nor receive; ``deaf`` nodes send but receive nothing."""

    def __init__(self) -> None:
        self.nodes: dict[int, RaftNode] = {}
        self.cut: set[int] = set()
        self.deaf: set[int] = set()

    def send(self, messages: list[Message]) -> None:
        loop = asyncio.get_running_loop()
        for m in messages:
            loop.call_soon(self.deliver, codec.encode_message(m), m.to)

    def deliver(self, raw: bytes, to: int) -> None:
        m = codec.decode_message(raw)
        if to in self.cut or to in self.deaf or m.from_ in self.cut or to not in self.nodes:
            return
        self.nodes[to].step(m)


class NodeCluster:
    def __init__(self, ids: list[int], boot: PersistentState, cfg: RaftConfig | None) -> None:
        self.clock = FakeClock()
        self.net = InstantNet()
        self.cfg = cfg or RaftConfig()
        self.ids = list(ids)
        self.boot = boot
        self.disks: dict[int, MemoryStorage] = {}
        self.leadership: dict[int, list[bool]] = {i: [] for i in ids}

    def state_machine(self, i: int) -> Any:
        raise NotImplementedError

    def storage(self, i: int) -> AsyncStorage:
        return AsyncStorage(self.disks.setdefault(i, MemoryStorage()), threaded=False)

    def attach(self, i: int, node: RaftNode, sm: Any) -> None:
        """Called once node ``i`` is built, before it starts."""

    async def start(self, i: int, founder: bool = True) -> RaftNode:
        sm = self.state_machine(i)
        on_leadership: Callable[[bool], None] = self.leadership.setdefault(i, []).append
        node = RaftNode(
            i,
            self.storage(i),
            self.net,
            sm,
            self.clock,
            tick_interval=TICK,
            config=self.cfg,
            rng=random.Random(i),
            on_leadership=on_leadership,
        )
        self.attach(i, node, sm)
        self.net.nodes[i] = node
        await node.start(self.boot if founder else None)
        return node

    async def start_all(self) -> None:
        for i in self.ids:
            await self.start(i)

    async def stop(self, i: int) -> None:
        await self.net.nodes.pop(i).stop()

    async def stop_all(self) -> None:
        for i in list(self.net.nodes):
            await self.stop(i)

    async def run(self, seconds: float) -> None:
        for _ in range(round(seconds / TICK)):
            await self.clock.advance(TICK)
            for _ in range(10):
                await asyncio.sleep(0)

    async def until(self, cond: Callable[[], object], seconds: float = 30.0) -> None:
        for _ in range(round(seconds / TICK)):
            if cond():
                return
            await self.run(TICK)
        assert cond(), "condition not reached"

    async def settle(self, task: "asyncio.Future[Any]") -> Any:
        """Let time pass until ``task`` is done, and return its result."""
        await self.until(task.done)
        return await task
