"""This node's side of the log broker: for each subscription the broker sends (on a stream
the agent keeps open for its session, like swarmkit's ListenSubscriptions), read the logs of
the matching tasks here and publish the lines back, one PublishLogs stream per subscription.

Without follow, a subscription ends once every matching task's log has been read, and the
stream says so with a close message: the broker waits for that from every node involved.
With follow it lasts until the broker closes it (its client went away), and tasks that
arrive on this node meanwhile are read too."""

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterable

import grpc
import grpc.aio

from shoal.agent.task_manager import TaskManager
from shoal.api.objects import Task
from shoal.logs.model import LogContext, LogMessage, LogOptions
from shoal.rpc import pb, pb_grpc
from shoal.rpc.logs import message_to_pb, options_from_pb

log = logging.getLogger(__name__)

# Lines per PublishLogs message, at most; and lines read ahead of the stream, per subscription
# (a slow reader on the far side holds the task readers back rather than filling memory).
PUBLISH_BATCH = 512
QUEUE_LINES = 4096

_END = object()


class SubscriptionsEnded(ConnectionError):
    """The broker ended the stream of subscriptions: the session is over (as in swarmkit,
    where this ends the session)."""


class _Subscription:
    def __init__(
        self,
        msg: pb.SubscriptionMessage,
        node_id: str,
        stub: pb_grpc.LogBrokerStub,
        metadata: tuple,
    ) -> None:
        self.id = msg.id
        self.node_id = node_id
        sel = msg.selector
        self._services = set(sel.service_ids)
        self._tasks = set(sel.task_ids)
        self._nodes = set(sel.node_ids)
        self.options = options_from_pb(msg.options)
        self._stub = stub
        self._metadata = metadata
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=QUEUE_LINES)
        self._readers: dict[str, asyncio.Task] = {}
        self.runner: asyncio.Task | None = None

    @property
    def follow(self) -> bool:
        return self.options.follow

    def matches(self, task: Task) -> bool:
        return (
            task.ID in self._tasks
            or task.ServiceID in self._services
            or self.node_id in self._nodes
        )

    def read(self, tm: TaskManager, options: LogOptions) -> None:
        """Start publishing one task's log (once per task)."""
        task = tm.task
        if task.ID in self._readers:
            return
        logs = getattr(tm.controller, "logs", None)
        if logs is None:
            return  # a runtime without logs: nothing to publish, as in swarmkit
        context = LogContext(node_id=self.node_id, service_id=task.ServiceID, task_id=task.ID)
        self._readers[task.ID] = asyncio.create_task(
            self._read(logs, options, context), name=f"logs {self.id} {task.ID}"
        )

    def forget(self, task_id: str) -> None:
        reader = self._readers.pop(task_id, None)
        if reader is not None:
            reader.cancel()

    async def _read(self, logs: Callable, options: LogOptions, context: LogContext) -> None:
        try:
            async for line in logs(options):
                await self._queue.put(message_to_pb(LogMessage(context, line)))
        except asyncio.CancelledError:
            raise
        except Exception:
            # One task's log failing to read must not end the others'.
            log.exception("reading the log of task %s failed", context.task_id)

    async def run(self, initial: Iterable[TaskManager]) -> None:
        call = self._stub.PublishLogs(metadata=self._metadata)
        try:
            for tm in initial:
                self.read(tm, self.options)
            closer = None
            if not self.follow:
                closer = asyncio.create_task(self._close_when_read())
            try:
                await self._publish(call)
            finally:
                if closer is not None:
                    closer.cancel()
                    await asyncio.gather(closer, return_exceptions=True)
            await call.write(pb.PublishLogsMessage(subscription_id=self.id, close=True))
            await call.done_writing()
            await call
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as err:
            # The broker forgot the subscription (its client left) or the session broke;
            # writing to a call the broker has already ended says so too.
            log.debug("publishing logs for subscription %s ended: %s", self.id, err)
        finally:
            call.cancel()
            for reader in self._readers.values():
                reader.cancel()
            await asyncio.gather(*self._readers.values(), return_exceptions=True)

    async def _close_when_read(self) -> None:
        await asyncio.gather(*self._readers.values(), return_exceptions=True)
        await self._queue.put(_END)

    async def _publish(self, call: grpc.aio.StreamUnaryCall) -> None:
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            batch = [item]
            ended = False
            while len(batch) < PUBLISH_BATCH and not self._queue.empty():
                more = self._queue.get_nowait()
                if more is _END:
                    ended = True
                    break
                batch.append(more)
            await call.write(pb.PublishLogsMessage(subscription_id=self.id, messages=batch))
            if ended:
                return


class LogPublisher:
    """The subscriptions this node serves, for the length of one session with a manager."""

    def __init__(self, node_id: str, tasks: Callable[[], Iterable[TaskManager]]) -> None:
        self.node_id = node_id
        self._tasks = tasks
        self._active: dict[str, _Subscription] = {}

    @property
    def subscriptions(self) -> list[str]:
        """IDs of the subscriptions this node is publishing for now."""
        return list(self._active)

    async def serve(self, stub: pb_grpc.LogBrokerStub, metadata: tuple) -> None:
        stream = stub.ListenSubscriptions(pb.ListenSubscriptionsRequest(), metadata=metadata)
        try:
            while True:
                msg = await stream.read()
                if msg is grpc.aio.EOF:
                    raise SubscriptionsEnded("the manager closed the log subscriptions stream")
                self._handle(msg, stub, metadata)
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
            log.warning("manager does not support log subscriptions")
            await asyncio.Event().wait()  # the session goes on without logs
        finally:
            stream.cancel()
            active = list(self._active.values())
            self._active.clear()
            for sub in active:
                if sub.runner is not None:
                    sub.runner.cancel()
            await asyncio.gather(
                *(s.runner for s in active if s.runner is not None), return_exceptions=True
            )

    def _handle(self, msg: pb.SubscriptionMessage, stub: pb_grpc.LogBrokerStub, md: tuple) -> None:
        if msg.close:
            sub = self._active.pop(msg.id, None)
            if sub is not None and sub.runner is not None:
                sub.runner.cancel()
            return
        if msg.id in self._active:
            return  # the broker may send a subscription again; it is already served
        sub = _Subscription(msg, self.node_id, stub, md)
        self._active[sub.id] = sub
        initial = [tm for tm in self._tasks() if sub.matches(tm.task)]
        sub.runner = asyncio.create_task(self._run(sub, initial), name=f"logs {sub.id}")

    async def _run(self, sub: _Subscription, initial: list[TaskManager]) -> None:
        try:
            await sub.run(initial)
        finally:
            if self._active.get(sub.id) is sub:
                del self._active[sub.id]

    def task_added(self, tm: TaskManager) -> None:
        """A task arrived on this node: following subscriptions that match it read all of
        its log (it is new, so a tail would only cut its first lines)."""
        for sub in self._active.values():
            if sub.follow and sub.matches(tm.task):
                sub.read(tm, dataclasses.replace(sub.options, tail=None))

    def task_removed(self, task_id: str) -> None:
        for sub in self._active.values():
            sub.forget(task_id)
