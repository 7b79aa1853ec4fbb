"""The log broker over real gRPC, with stand-in agents that speak its protocol: which nodes
are asked, when a subscription ends, and what is refused."""

import asyncio
import contextlib

import grpc
import grpc.aio
import pytest

from shoal.api.objects import Task
from shoal.clock import SystemClock
from shoal.logs.model import STDOUT, LogContext, LogLine, LogMessage, LogOptions
from shoal.manager.logbroker import LogBroker, LogsIncomplete
from shoal.rpc import Transport, pb, pb_grpc
from shoal.rpc.logs import message_to_pb, options_to_pb, selector_pb
from shoal.store import MemoryStore

TIMEOUT = 20


async def until(check, what=""):
    async def poll():
        while not (result := check()):  # noqa: ASYNC110 - polls the broker's state
            await asyncio.sleep(0.01)
        return result

    try:
        return await asyncio.wait_for(poll(), TIMEOUT)
    except TimeoutError:
        raise AssertionError(f"timed out: {what}") from None


def task(tid, node, service="s1", state="running"):
    return Task.model_validate(
        {"ID": tid, "ServiceID": service, "NodeID": node, "Status": {"State": state}}
    )


def line(node, tid, text, service="s1"):
    return message_to_pb(
        LogMessage(
            LogContext(node_id=node, service_id=service, task_id=tid),
            LogLine(timestamp_ns=1, stream=STDOUT, data=text.encode()),
        )
    )


class StandInAgent:
    """Speaks the agent's side of the LogBroker protocol, step by step as a test says."""

    def __init__(self, port: int, node_id: str) -> None:
        transport = Transport(node_id=node_id)
        self.node_id = node_id
        self.channel = transport.channel(f"127.0.0.1:{port}")
        self.stub = pb_grpc.LogBrokerStub(self.channel)
        self.md = transport.metadata()
        self.listening = None

    def listen(self) -> None:
        self.listening = self.stub.ListenSubscriptions(
            pb.ListenSubscriptionsRequest(), metadata=self.md
        )

    async def next(self) -> pb.SubscriptionMessage:
        return await asyncio.wait_for(self.listening.read(), TIMEOUT)

    async def publish(self, sub_id: str, *texts: str, tid: str = "t1", close: bool = True):
        call = self.stub.PublishLogs(metadata=self.md)
        if texts:
            await call.write(
                pb.PublishLogsMessage(
                    subscription_id=sub_id,
                    messages=[line(self.node_id, tid, t) for t in texts],
                )
            )
        if close:
            await call.write(pb.PublishLogsMessage(subscription_id=sub_id, close=True))
        await call.done_writing()
        return await call

    async def close(self) -> None:
        await self.channel.close()


class Rig:
    async def start(self) -> None:
        self.store = MemoryStore()
        self.broker = LogBroker(self.store, SystemClock())
        self.server = Transport().server()
        self.broker.add_to_server(self.server)
        self.port = Transport().add_port(self.server, "127.0.0.1:0")
        await self.server.start()
        self.agents: list[StandInAgent] = []

    async def agent(self, node_id: str) -> StandInAgent:
        agent = StandInAgent(self.port, node_id)
        agent.listen()
        self.agents.append(agent)
        await until(lambda: node_id in self.broker.nodes_listening, f"{node_id} listening")
        return agent

    async def add(self, *tasks: Task) -> None:
        await self.store.update(lambda tx: [tx.create(t) for t in tasks])

    async def close(self) -> None:
        for agent in self.agents:
            await agent.close()
        await self.broker.close()
        await self.server.stop(0)


@pytest.fixture
async def rig():
    r = Rig()
    await r.start()
    yield r
    await r.close()


async def collect(batches) -> list[bytes]:
    return [m.data async for batch in batches for m in batch]


def subscribe(rig, follow=False, **selector):
    return contextlib.aclosing(
        rig.broker.subscribe(selector_pb(**selector), options_to_pb(LogOptions(follow=follow)))
    )


async def test_lines_from_every_node_then_the_end(rig):
    await rig.add(task("t1", "n1"), task("t2", "n2"), task("t3", "n3", service="other"))
    a1, a2 = await rig.agent("n1"), await rig.agent("n2")
    n3 = await rig.agent("n3")
    got: list[bytes] = []
    async with subscribe(rig, service_ids=["s1"]) as batches:
        reader = asyncio.create_task(collect_into(batches, got))
        m1, m2 = await a1.next(), await a2.next()
        assert m1.id == m2.id and not m1.close
        assert list(m1.selector.service_ids) == ["s1"]
        await a1.publish(m1.id, "one\n", "two\n")
        await asyncio.sleep(0)
        assert not reader.done()  # n2 has not finished
        await a2.publish(m2.id, "three\n", tid="t2")
        await asyncio.wait_for(reader, TIMEOUT)
    assert sorted(got) == [b"one\n", b"three\n", b"two\n"]
    # n3 runs no task of the service: it was never asked.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(n3.listening.read(), 0.2)


async def collect_into(batches, out: list[bytes]) -> None:
    async for batch in batches:
        out.extend(m.data for m in batch)


async def test_a_node_not_listening_is_reported_after_the_others_lines(rig):
    await rig.add(task("t1", "n1"), task("t2", "n2"))
    a1 = await rig.agent("n1")
    got: list[bytes] = []
    async with subscribe(rig, service_ids=["s1"]) as batches:
        reader = asyncio.create_task(collect_into(batches, got))
        msg = await a1.next()
        await a1.publish(msg.id, "hello\n")
        with pytest.raises(LogsIncomplete) as err:
            await asyncio.wait_for(reader, TIMEOUT)
    assert got == [b"hello\n"]
    assert err.value.message == (
        "warning: incomplete log stream. some logs could not be retrieved for the following "
        "reasons: node n2 is not available"
    )


async def test_a_node_that_leaves_mid_way_is_reported(rig):
    await rig.add(task("t1", "n1"))
    a1 = await rig.agent("n1")
    async with subscribe(rig, task_ids=["t1"]) as batches:
        reader = asyncio.create_task(collect(batches))
        await a1.next()
        a1.listening.cancel()
        with pytest.raises(LogsIncomplete, match="node n1 disconnected unexpectedly"):
            await asyncio.wait_for(reader, TIMEOUT)


async def test_nothing_to_read_ends_at_once(rig):
    await rig.add(task("t1", "n1", state="preparing"))
    async with subscribe(rig, service_ids=["s1"]) as batches:
        assert await asyncio.wait_for(collect(batches), TIMEOUT) == []


async def test_a_node_cannot_publish_for_another(rig):
    await rig.add(task("t1", "n1"))
    a1 = await rig.agent("n1")
    async with subscribe(rig, service_ids=["s1"]) as batches:
        reader = asyncio.create_task(collect(batches))
        msg = await a1.next()
        call = a1.stub.PublishLogs(metadata=a1.md)
        await call.write(
            pb.PublishLogsMessage(subscription_id=msg.id, messages=[line("n2", "t1", "forged")])
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert err.value.details() == "invalid NodeID: expected=n1;received=n2"
        with pytest.raises(LogsIncomplete, match="publishing logs failed"):
            await asyncio.wait_for(reader, TIMEOUT)


async def test_unknown_subscription_is_refused(rig):
    a1 = await rig.agent("n1")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await a1.publish("nosuch", "x\n")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_follow_brings_in_nodes_as_tasks_are_scheduled_and_closes_them_at_the_end(rig):
    await rig.add(task("t1", "n1"))
    a1, a2 = await rig.agent("n1"), await rig.agent("n2")
    got: list[bytes] = []
    async with subscribe(rig, follow=True, service_ids=["s1"]) as batches:
        reader = asyncio.create_task(collect_into(batches, got))
        msg = await a1.next()
        assert msg.options.follow
        await a1.publish(msg.id, "from n1\n", close=False)
        await rig.add(task("t2", "", state="pending"))

        def schedule(tx):
            t = tx.get(Task, "t2").clone()
            t.NodeID = "n2"
            tx.update(t)

        await rig.store.update(schedule)
        assert (await a2.next()).id == msg.id
        await a2.publish(msg.id, "from n2\n", tid="t2", close=False)
        await until(lambda: len(got) == 2, "lines from both nodes")
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    # The subscriber left: every node involved is told to stop.
    for agent in (a1, a2):
        closing = await agent.next()
        assert closing.id == msg.id and closing.close
    assert rig.broker.subscriptions == []
    assert sorted(got) == [b"from n1\n", b"from n2\n"]


async def test_a_listener_that_arrives_later_gets_the_follow_subscription(rig):
    await rig.add(task("t1", "n1"))
    async with subscribe(rig, follow=True, task_ids=["t1"]) as batches:
        reader = asyncio.create_task(collect(batches))
        await until(lambda: rig.broker.subscriptions, "subscribed")
        a1 = await rig.agent("n1")
        msg = await a1.next()
        assert list(msg.selector.task_ids) == ["t1"]
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def test_subscribe_over_rpc(rig):
    await rig.add(task("t1", "n1"))
    a1 = await rig.agent("n1")
    channel = Transport(node_id="m1").channel(f"127.0.0.1:{rig.port}")
    try:
        stream = pb_grpc.LogsStub(channel).SubscribeLogs(
            pb.SubscribeLogsRequest(selector=selector_pb(task_ids=["t1"]))
        )
        msg = await a1.next()
        await a1.publish(msg.id, "over rpc\n")
        got = [m.data async for batch in stream for m in batch.messages]
        assert got == [b"over rpc\n"]
        bad = pb_grpc.LogsStub(channel).SubscribeLogs(pb.SubscribeLogsRequest())
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await bad.read()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details() == "log selector must not be empty"
    finally:
        await channel.close()
