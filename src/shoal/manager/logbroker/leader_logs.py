"""Logs asked of a follower manager: agents publish to the leader's broker (their sessions are
with the leader), so a follower reads through the leader's Logs service, as swarmkit's
managers proxy log subscriptions to the leader."""

from collections.abc import AsyncGenerator

import grpc.aio

from shoal.errors import Unavailable
from shoal.manager.consensus.replica import Replica
from shoal.rpc import from_rpc_error, pb, pb_grpc

LEADER_WAIT = 5.0


class LeaderLogs:
    def __init__(self, replica: Replica) -> None:
        self.replica = replica

    async def subscribe(
        self, selector: pb.LogSelector, options: pb.LogSubscriptionOptions
    ) -> AsyncGenerator[list[pb.LogMessage]]:
        channel = await self.replica.leader_channel(LEADER_WAIT)
        if channel is None:
            raise Unavailable("this manager became the leader: ask again")
        stream = pb_grpc.LogsStub(channel).SubscribeLogs(
            pb.SubscribeLogsRequest(selector=selector, options=options)
        )
        try:
            async for message in stream:
                yield list(message.messages)
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err) from None
        finally:
            stream.cancel()
