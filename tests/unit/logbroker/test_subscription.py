import pytest

from shoal.api.objects import Task
from shoal.manager.logbroker.subscription import INCOMPLETE, Subscription
from shoal.rpc import pb
from shoal.store import MemoryStore


def task(tid, service="s1", node="n1", state="running"):
    return Task.model_validate(
        {"ID": tid, "ServiceID": service, "NodeID": node, "Status": {"State": state}}
    )


@pytest.fixture
async def store():
    s = MemoryStore()
    tasks = [
        task("t1", node="n1"),
        task("t2", node="n2"),
        task("t3", node="n2", state="complete"),
        task("t4", node="n3", state="preparing"),
        task("t5", node="", state="pending"),
        task("t6", service="other", node="n4"),
    ]
    await s.update(lambda tx: [tx.create(t) for t in tasks])
    return s


def sub(services=(), tasks=(), nodes=(), follow=False):
    return Subscription(
        "sub1",
        pb.LogSelector(service_ids=list(services), task_ids=list(tasks), node_ids=list(nodes)),
        pb.LogSubscriptionOptions(follow=follow),
    )


async def test_service_without_follow_takes_nodes_of_tasks_that_have_run(store):
    s = sub(services=["s1"])
    s.match(store.view())
    # t4 has not run yet, t5 has no node (and has not run either: not counted as pending).
    assert s.nodes == s.waiting == {"n1", "n2"}
    assert s.error() is None
    assert not s.complete


async def test_service_with_follow_takes_every_task(store):
    s = sub(services=["s1"], follow=True)
    s.match(store.view())
    assert s.nodes == {"n1", "n2", "n3"}
    assert s.waiting == set()  # follow never completes
    assert s.pending_tasks == {"t5"}


async def test_tasks_are_taken_whatever_their_state(store):
    s = sub(tasks=["t4", "t5", "gone"])
    s.match(store.view())
    assert s.nodes == {"n3"}
    assert s.error() == INCOMPLETE + "task t5 has not been scheduled"


async def test_nodes_selector(store):
    s = sub(nodes=["n9"])
    s.match(store.view())
    assert s.nodes == s.waiting == {"n9"}


async def test_completes_when_every_node_is_done_and_collects_errors(store):
    s = sub(services=["s1"])
    s.match(store.view())
    s.done("n1")
    assert not s.complete
    s.done("n2", "node n2 is not available")
    s.done("n2", None)  # twice is harmless
    assert s.complete
    assert s.error() == INCOMPLETE + "node n2 is not available"


async def test_follow_considers_new_tasks(store):
    s = sub(services=["s1"], tasks=["x9"], follow=True)
    s.match(store.view())
    assert s.consider(task("t7", node="n5"))
    assert not s.consider(task("t8", node="n5"))  # node already in
    assert not s.consider(task("t9", service="other", node="n6"))
    assert not s.consider(task("t10", node=""))
    assert "t10" in s.pending_tasks
    assert s.consider(task("t10", node="n7"))  # scheduled now
    assert "t10" not in s.pending_tasks
    assert s.consider(task("x9", service="zzz", node="n8"))
    assert s.nodes == {"n1", "n2", "n3", "n5", "n7", "n8"}


def test_message_carries_the_close_flag():
    s = sub(services=["s1"])
    assert s.message().close is False
    s.closed = True
    msg = s.message()
    assert msg.close and msg.id == "sub1" and list(msg.selector.service_ids) == ["s1"]
