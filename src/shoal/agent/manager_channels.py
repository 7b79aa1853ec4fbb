"""The agent's gRPC channels to the managers, kept from one session attempt to the next.

A new channel is a new TCP connection and a new mutual-TLS handshake, on both ends. When a
leader dies, every node it served looks for the next one at once, and the managers that are
left answer "not the leader" until one is elected, a few times to each node: with a channel
per attempt, each answer cost a handshake on a manager that was holding an election meanwhile
(issue 15: 1,000 nodes made the election take 7 s). A manager that answered is worth keeping
a channel to: the next attempt is one more call on the same connection.

A channel is kept only while its manager answers: one whose call failed in any other way (no
connection, reset, timed out) is closed, so nothing retries in the background towards a
manager that is gone, and a manager that comes back is reached at once by a new channel
rather than after gRPC's reconnect backoff. All are closed when the node's certificate changes
(a channel is built with the certificate of its time) and when the agent stops.
"""

import grpc.aio

from shoal.rpc import Transport


class ManagerChannels:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._generation = transport.generation
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def get(self, addr: str) -> grpc.aio.Channel:
        """The channel to ``addr``: the one kept, or a new one."""
        if self._generation != self._transport.generation:
            await self.close()
            self._generation = self._transport.generation
        channel = self._channels.get(addr)
        if channel is None:
            channel = self._transport.channel(addr)
            self._channels[addr] = channel
        return channel

    async def drop(self, addr: str) -> None:
        """Close the channel to ``addr``: the next attempt makes a new one."""
        channel = self._channels.pop(addr, None)
        if channel is not None:
            await channel.close()

    async def keep_only(self, addrs: list[str]) -> None:
        """Close the channels to managers no longer in ``addrs``."""
        for addr in [a for a in self._channels if a not in addrs]:
            await self.drop(addr)

    def __contains__(self, addr: str) -> bool:
        return addr in self._channels

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            await channel.close()
