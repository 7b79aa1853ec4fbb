"""The Raft gRPC service a manager serves to the other managers: raft messages in, and
requests to join the membership (handled by the leader; a follower passes them on)."""

import logging
from collections.abc import AsyncIterator

import grpc
import grpc.aio

from shoal.api.objects import Node
from shoal.api.types import NodeRole
from shoal.errors import PermissionDenied
from shoal.manager.consensus.forwarding import on_leader
from shoal.manager.consensus.peers import join_chunks
from shoal.manager.consensus.replica import Replica
from shoal.raft import codec
from shoal.rpc import pb, pb_grpc, peer_identity, rpc_errors

log = logging.getLogger(__name__)

FORWARD_TIMEOUT = 10.0
# swarmkit's words (membership.ErrMemberRemoved), to a member this manager saw removed.
MEMBER_REMOVED = "raft: member was removed from the cluster"


class RaftService(pb_grpc.RaftServicer):
    def __init__(self, replica: Replica) -> None:
        self.replica = replica

    def add_to_server(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_RaftServicer_to_server(self, server)

    async def Send(
        self, request_iterator: AsyncIterator[pb.RaftChunk], context: grpc.aio.ServicerContext
    ) -> pb.RaftSendResponse:
        node = self.replica.node
        if node is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "raft is not running here")
        assert node is not None
        caller = peer_identity(context)
        if caller is None:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "unknown caller")
        assert caller is not None
        try:
            async for payload in join_chunks(request_iterator):
                m = codec.decode_message(payload)
                if m.to != self.replica.raft_id:
                    continue  # meant for a member this manager no longer is
                if m.from_ in self.replica.log.removed:
                    await context.abort(grpc.StatusCode.NOT_FOUND, MEMBER_REMOVED)
                member = self.replica.log.members.get(m.from_)
                if member is not None and member.node_id and member.node_id != caller.node_id:
                    await context.abort(
                        grpc.StatusCode.PERMISSION_DENIED,
                        f"raft member {m.from_:x} is not node {caller.node_id}",
                    )
                node.step(m)
        except (codec.DecodeError, ValueError) as err:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        return pb.RaftSendResponse()

    @rpc_errors
    async def Join(
        self, request: pb.JoinRaftRequest, context: grpc.aio.ServicerContext
    ) -> pb.JoinRaftResponse:
        caller = peer_identity(context)
        if caller is None:
            raise PermissionDenied("unknown caller")
        # A manager may pass on another's request (a follower forwarding to the leader);
        # anyone else may only ask for itself.
        forwarded = caller.node_id != request.node_id
        if forwarded and caller.verified and caller.role != "manager":
            raise PermissionDenied(f"node {caller.node_id} may not join raft for another node")
        return await on_leader(
            self.replica,
            self.replica.clock,
            lambda: self._join(request),
            lambda channel: pb_grpc.RaftStub(channel).Join(
                request, timeout=FORWARD_TIMEOUT, metadata=self.replica.transport.metadata()
            ),
        )

    async def _join(self, request: pb.JoinRaftRequest) -> pb.JoinRaftResponse:
        node = self.replica.store.view().get(Node, request.node_id)
        if node is None or node.Role != NodeRole.MANAGER:
            raise PermissionDenied(f"node {request.node_id} is not a manager")
        raft_id, members = await self.replica.add_member(request.node_id, request.addr)
        log.info("node %s joins raft as member %x", request.node_id, raft_id)
        return pb.JoinRaftResponse(
            raft_id=raft_id,
            members=[
                pb.RaftMember(raft_id=m.raft_id, node_id=m.node_id, addr=m.addr) for m in members
            ],
        )
