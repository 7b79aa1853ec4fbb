"""A manager turns away the raft messages of a member it saw removed, as swarmkit's transport
does: one that never learnt of its removal (down or cut off when it was removed) would
otherwise depose the leader with its higher term, again and again (the Raft thesis, 4.2.3;
the raft simulation's seed 1585 without pre-vote). Over a real gRPC server and channel."""

import types

import grpc
import grpc.aio
import pytest

from shoal.manager.consensus.peers import RaftPeers
from shoal.manager.consensus.replicated_log import ReplicatedLog
from shoal.manager.consensus.service import MEMBER_REMOVED, RaftService
from shoal.raft import codec
from shoal.raft.members import RaftMember, encode_context
from shoal.raft.types import ConfChange, ConfChangeType, Message, MessageType
from shoal.rpc import Transport
from shoal.store import MemoryStore
from tests.e2e.harness import free_port

HOST = "127.0.0.1"


class Stepped:
    """The raft node's receiving end: what the service handed it."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def step(self, m: Message) -> None:
        self.messages.append(m)


def membership() -> ReplicatedLog:
    """Members 1 (this manager), 2 and 3, then 3 removed."""
    log = ReplicatedLog(MemoryStore())
    for index, raft_id in enumerate((1, 2, 3), start=1):
        context = encode_context(f"node{raft_id}", f"{HOST}:{raft_id}")
        log.apply_conf_change(index, ConfChange(ConfChangeType.ADD_VOTER, raft_id, context))
    log.apply_conf_change(4, ConfChange(ConfChangeType.REMOVE, 3))
    return log


def heartbeat_answer(sender: int) -> bytes:
    # Of a higher term than anyone's: what deposed the leader in the simulation.
    m = Message(MessageType.HEARTBEAT_RESP, to=1, from_=sender, term=26)
    return codec.encode_message(m)


async def test_the_messages_of_a_removed_member_are_refused_and_never_stepped():
    stepped = Stepped()
    log = membership()
    assert log.removed == {3} and set(log.members) == {1, 2}
    replica = types.SimpleNamespace(node=stepped, raft_id=1, log=log)
    port = free_port(HOST)
    server = Transport().server()
    RaftService(replica).add_to_server(server)  # type: ignore[arg-type]
    server.add_insecure_port(f"{HOST}:{port}")
    await server.start()
    member = RaftMember(1, "node1", f"{HOST}:{port}")
    removed = RaftPeers(Transport(node_id="node3"), self_id=3)
    kept = RaftPeers(Transport(node_id="node2"), self_id=2)
    try:
        removed.update({1: member})
        kept.update({1: member})
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await removed.deliver(1, [heartbeat_answer(3)])
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert err.value.details() == MEMBER_REMOVED
        assert stepped.messages == []
        await kept.deliver(1, [heartbeat_answer(2)])
        assert [m.from_ for m in stepped.messages] == [2]
    finally:
        await removed.close()
        await kept.close()
        await server.stop(grace=None)
