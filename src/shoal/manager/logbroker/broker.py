"""The LogBroker and Logs gRPC services, and ``subscribe`` for callers on this manager.

A subscription is sent to every node that runs a matching task, over the ListenSubscriptions
stream that node's agent keeps open; a node that has none open is noted as unavailable. Each
agent answers with a PublishLogs stream of lines, ended by a close message; the broker
passes the lines on to the subscriber. Without follow, the subscription ends when every node
involved has closed (or gone away); with follow, when the subscriber leaves, and nodes that
gain matching tasks meanwhile are brought in."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator

import grpc
import grpc.aio

from shoal.api.ids import new_id
from shoal.api.objects import Task
from shoal.clock import Clock
from shoal.errors import InvalidArgument, ShoalError
from shoal.manager.logbroker.subscription import Subscription
from shoal.rpc import abort_with, pb, pb_grpc, peer_identity
from shoal.store import MemoryStore
from shoal.store.watch import Subscription as StoreWatch

log = logging.getLogger(__name__)

# Batches of lines held for a subscriber that reads slowly before the publishers must wait.
SUBSCRIBER_BACKLOG = 64


class LogsIncomplete(ShoalError):
    """Some nodes or tasks could not give their logs; the lines that came were delivered."""


async def _first(*aws: asyncio.Future) -> set[asyncio.Future]:
    done, pending = await asyncio.wait(aws, return_when=asyncio.FIRST_COMPLETED)
    for fut in pending:
        fut.cancel()
    return done


class _Stream:
    """A subscription and the way to its subscriber."""

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.batches: asyncio.Queue[list[pb.LogMessage]] = asyncio.Queue(SUBSCRIBER_BACKLOG)
        self.finished = asyncio.Event()  # every node is done: end after the queued lines
        self.gone = asyncio.Event()  # the subscriber left: drop whatever still arrives

    async def deliver(self, batch: list[pb.LogMessage]) -> None:
        if self.gone.is_set():
            return
        await _first(
            asyncio.ensure_future(self.batches.put(batch)),
            asyncio.ensure_future(self.gone.wait()),
        )

    async def next(self) -> list[pb.LogMessage] | None:
        while True:
            if not self.batches.empty():
                return self.batches.get_nowait()
            if self.finished.is_set():
                return None
            getter = asyncio.ensure_future(self.batches.get())
            if getter in await _first(getter, asyncio.ensure_future(self.finished.wait())):
                return getter.result()


class _Listener:
    """An agent's ListenSubscriptions stream: subscriptions to send it, None to end it."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Subscription | None] = asyncio.Queue()

    def send(self, sub: Subscription) -> None:
        self.queue.put_nowait(sub)

    def end(self) -> None:
        self.queue.put_nowait(None)


class LogBroker(pb_grpc.LogBrokerServicer, pb_grpc.LogsServicer):
    def __init__(self, store: MemoryStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._streams: dict[str, _Stream] = {}
        self._listeners: dict[str, _Listener] = {}

    @property
    def subscriptions(self) -> list[str]:
        """IDs of the subscriptions being served now."""
        return list(self._streams)

    @property
    def nodes_listening(self) -> list[str]:
        """Nodes whose agents listen for subscriptions now."""
        return sorted(self._listeners)

    def add_to_server(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_LogBrokerServicer_to_server(self, server)
        pb_grpc.add_LogsServicer_to_server(self, server)

    # --- subscribing ------------------------------------------------------------------------

    async def subscribe(
        self, selector: pb.LogSelector, options: pb.LogSubscriptionOptions
    ) -> AsyncGenerator[list[pb.LogMessage]]:
        """Batches of log lines for the selector, as nodes send them. Ends (without follow)
        when every node involved is done, raising LogsIncomplete then if some logs could not
        be read. Use it under ``contextlib.aclosing`` so that leaving early ends the
        subscription on the nodes at once."""
        if not (selector.service_ids or selector.task_ids or selector.node_ids):
            raise InvalidArgument("log selector must not be empty")
        sub = Subscription(new_id(), selector, options)
        stream = _Stream(sub)
        watch: StoreWatch | None = None
        follower: asyncio.Task | None = None
        if sub.follow:
            view, watch = self.store.view_and_watch(kinds={"task"})
            sub.match(view)
            follower = asyncio.create_task(self._follow(stream, watch), name=f"logs {sub.id}")
        else:
            sub.match(self.store.view())
        self._register(stream)
        try:
            while (batch := await stream.next()) is not None:
                yield batch
            if (error := sub.error()) is not None:
                raise LogsIncomplete(error)
        finally:
            if follower is not None:
                follower.cancel()
            if watch is not None:
                watch.close()
            self._unregister(stream)

    def _register(self, stream: _Stream) -> None:
        sub = stream.sub
        self._streams[sub.id] = stream
        for node_id in sorted(sub.nodes):
            listener = self._listeners.get(node_id)
            if listener is None:
                sub.done(node_id, f"node {node_id} is not available")
            else:
                listener.send(sub)
        self._check_complete(stream)

    def _unregister(self, stream: _Stream) -> None:
        sub = stream.sub
        if self._streams.get(sub.id) is stream:
            del self._streams[sub.id]
        sub.closed = True
        stream.gone.set()
        for node_id in sub.nodes:
            listener = self._listeners.get(node_id)
            if listener is not None:
                listener.send(sub)  # tells the agent to stop

    def _done(self, stream: _Stream, node_id: str, error: str | None) -> None:
        stream.sub.done(node_id, error)
        self._check_complete(stream)

    @staticmethod
    def _check_complete(stream: _Stream) -> None:
        if stream.sub.complete:
            stream.finished.set()

    async def _follow(self, stream: _Stream, watch: StoreWatch) -> None:
        """Bring in the nodes of matching tasks as they are scheduled."""
        async for ev in watch:
            if ev.is_commit or ev.action == "remove":
                continue
            task = ev.obj
            if isinstance(task, Task) and stream.sub.consider(task) and task.NodeID:
                listener = self._listeners.get(task.NodeID)
                if listener is not None:
                    listener.send(stream.sub)

    # --- the agents' side -------------------------------------------------------------------

    async def _caller(self, context: grpc.aio.ServicerContext) -> str:
        peer = peer_identity(context)
        if peer is None or not peer.node_id:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "node not registered")
        assert peer is not None
        return peer.node_id

    async def ListenSubscriptions(
        self, request: pb.ListenSubscriptionsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SubscriptionMessage]:
        node_id = await self._caller(context)
        listener = _Listener()
        previous = self._listeners.get(node_id)
        if previous is not None:
            previous.end()  # a newer session of the same node replaces it
        self._listeners[node_id] = listener
        sent: set[str] = set()
        try:
            for stream in list(self._streams.values()):
                if node_id in stream.sub.nodes:
                    sent.add(stream.sub.id)
                    yield stream.sub.message()
            while (sub := await listener.queue.get()) is not None:
                if sub.closed:
                    if sub.id in sent:
                        sent.discard(sub.id)
                        yield sub.message()
                elif sub.id not in sent:
                    sent.add(sub.id)
                    yield sub.message()
        finally:
            if self._listeners.get(node_id) is listener:
                del self._listeners[node_id]
                for stream in list(self._streams.values()):
                    if node_id in stream.sub.waiting:
                        self._done(stream, node_id, f"node {node_id} disconnected unexpectedly")

    async def PublishLogs(
        self,
        request_iterator: AsyncIterator[pb.PublishLogsMessage],
        context: grpc.aio.ServicerContext,
    ) -> pb.PublishLogsResponse:
        node_id = await self._caller(context)
        stream: _Stream | None = None
        error: str | None = None
        try:
            async for msg in request_iterator:
                if not msg.subscription_id:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "missing subscription ID")
                if stream is None:
                    stream = self._streams.get(msg.subscription_id)
                    if stream is None:
                        await context.abort(grpc.StatusCode.NOT_FOUND, "unknown subscription ID")
                elif msg.subscription_id != stream.sub.id:
                    await context.abort(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "different subscription IDs in the same session",
                    )
                assert stream is not None
                if msg.close:
                    break
                # A node speaks only for itself.
                for m in msg.messages:
                    if m.node_id != node_id:
                        await context.abort(
                            grpc.StatusCode.PERMISSION_DENIED,
                            f"invalid NodeID: expected={node_id};received={m.node_id}",
                        )
                if msg.messages:
                    await stream.deliver(list(msg.messages))
            return pb.PublishLogsResponse()
        except (asyncio.CancelledError, Exception) as err:
            error = f"node {node_id}: publishing logs failed: {str(err) or type(err).__name__}"
            raise
        finally:
            if stream is not None:
                self._done(stream, node_id, error)

    # --- the Logs service: subscribing over RPC -----------------------------------------------

    async def SubscribeLogs(
        self, request: pb.SubscribeLogsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SubscribeLogsMessage]:
        try:
            async with contextlib.aclosing(
                self.subscribe(request.selector, request.options)
            ) as batches:
                async for batch in batches:
                    yield pb.SubscribeLogsMessage(messages=batch)
        except ShoalError as err:
            await abort_with(context, err)

    async def close(self) -> None:
        for listener in self._listeners.values():
            listener.end()
        for stream in self._streams.values():
            stream.sub.errors.append("the manager is shutting down")
            stream.finished.set()
