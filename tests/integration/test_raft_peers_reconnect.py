"""A manager's raft channels to its peers are connected before first use, and one whose peer
restarted is connected again without waiting for a message to send (followers send each
other none until an election, and the first vote request would pay for the connection)."""

import asyncio

import grpc
import grpc.aio

from shoal.manager.consensus.peers import RaftPeers
from shoal.raft.members import RaftMember
from shoal.rpc import Transport
from tests.e2e.harness import free_port

HOST = "127.0.0.1"
READY = grpc.ChannelConnectivity.READY


async def until(check, seconds: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def serve(port: int) -> grpc.aio.Server:
    server = Transport().server()
    server.add_insecure_port(f"{HOST}:{port}")
    await server.start()
    return server


async def test_a_channel_to_a_restarted_peer_is_connected_again_before_any_message():
    port = free_port(HOST)
    server = await serve(port)
    peers = RaftPeers(Transport(), self_id=1)
    try:
        peers.update({1: RaftMember(1, "a", ""), 2: RaftMember(2, "b", f"{HOST}:{port}")})
        channel = peers.channel(2)
        await until(lambda: channel.get_state() == READY)  # no call made on it
        await server.stop(grace=None)
        await until(lambda: channel.get_state() != READY)
        server = await serve(port)
        # Gone idle with its connection, a channel stays so until used, or until asked.
        await asyncio.sleep(1.0)
        assert channel.get_state() != READY
        peers.connect_idle()
        await until(lambda: channel.get_state() == READY)
    finally:
        await peers.close()
        await server.stop(grace=None)
