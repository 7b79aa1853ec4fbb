"""Which secrets and configs a node is sent, and what changes it is told."""

import base64

import pytest

from shoal.api.ids import new_id
from shoal.api.objects import Config, Secret, Task
from shoal.api.specs import (
    ConfigReference,
    ConfigSpec,
    ContainerSpec,
    SecretReference,
    SecretReferenceFileTarget,
    SecretSpec,
    TaskSpec,
)
from shoal.api.types import TaskState
from shoal.manager.dispatcher.dependencies import (
    NodeDependencies,
    dependency_changes,
    holds_dependencies,
    node_dependencies,
)
from shoal.store import MemoryStore


def secret(name: str) -> Secret:
    data = base64.b64encode(name.encode()).decode()
    return Secret(ID=new_id(), Spec=SecretSpec(Name=name, Data=data))


def config(name: str) -> Config:
    return Config(ID=new_id(), Spec=ConfigSpec(Name=name, Data=""))


def task(node: str, state: TaskState, secrets=(), configs=()) -> Task:
    spec = ContainerSpec(
        Image="busybox",
        Secrets=[
            SecretReference(
                SecretID=s.ID, SecretName=s.Spec.Name, File=SecretReferenceFileTarget(Name="x")
            )
            for s in secrets
        ],
        Configs=[ConfigReference(ConfigID=c.ID, ConfigName=c.Spec.Name) for c in configs],
    )
    t = Task(ID=new_id(), NodeID=node, Spec=TaskSpec(ContainerSpec=spec))
    t.Status.State = state
    return t


@pytest.mark.parametrize(
    ("state", "holds"),
    [
        (TaskState.PENDING, False),
        (TaskState.ASSIGNED, True),
        (TaskState.PREPARING, True),
        (TaskState.RUNNING, True),
        (TaskState.COMPLETE, False),
        (TaskState.SHUTDOWN, False),
        (TaskState.FAILED, False),
        (TaskState.REJECTED, False),
    ],
)
def test_a_task_holds_its_dependencies_from_assigned_to_running(state, holds):
    assert holds_dependencies(task("n1", state)) is holds


async def test_a_node_gets_only_what_its_live_tasks_reference():
    s1, s2, s3, s4 = secret("s1"), secret("s2"), secret("s3"), secret("s4")
    c1, c2 = config("c1"), config("c2")
    mine = task("n1", TaskState.RUNNING, secrets=[s1], configs=[c1])
    finished = task("n1", TaskState.COMPLETE, secrets=[s2])
    unassigned = task("n1", TaskState.PENDING, secrets=[s3])
    elsewhere = task("n2", TaskState.RUNNING, secrets=[s4], configs=[c2])
    store = MemoryStore()
    await store.update(
        lambda tx: (
            [tx.create(o) for o in (s1, s2, s3, s4, c1, c2)]
            + [tx.create(t) for t in (mine, finished, unassigned, elsewhere)]
        )
    )
    deps = node_dependencies(store.view(), "n1")
    assert list(deps.secrets) == [s1.ID]
    assert deps.secrets[s1.ID].Spec.Data == s1.Spec.Data  # sent with its data
    assert list(deps.configs) == [c1.ID]
    assert node_dependencies(store.view(), "n3") == NodeDependencies()


async def test_a_secret_shared_by_two_tasks_stays_until_both_are_done():
    s1 = secret("s1")
    a = task("n1", TaskState.RUNNING, secrets=[s1])
    b = task("n1", TaskState.ASSIGNED, secrets=[s1])
    store = MemoryStore()
    await store.update(lambda tx: [tx.create(o) for o in (s1, a, b)])
    assert list(node_dependencies(store.view(), "n1").secrets) == [s1.ID]

    done = a.clone()
    done.Status.State = TaskState.COMPLETE
    await store.update(lambda tx: tx.update(done))
    assert list(node_dependencies(store.view(), "n1").secrets) == [s1.ID]

    await store.update(lambda tx: tx.delete(Task, b.ID))
    assert node_dependencies(store.view(), "n1").secrets == {}


async def test_a_removed_secret_is_left_out():
    s1 = secret("s1")
    a = task("n1", TaskState.RUNNING, secrets=[s1])
    store = MemoryStore()
    await store.update(lambda tx: [tx.create(o) for o in (s1, a)])
    await store.update(lambda tx: tx.delete(Secret, s1.ID))
    assert node_dependencies(store.view(), "n1").secrets == {}


def test_changes_name_the_new_the_changed_and_the_gone():
    s1, s2, s3 = secret("s1"), secret("s2"), secret("s3")
    c1 = config("c1")
    sent = NodeDependencies(secrets={s1.ID: s1, s2.ID: s2}, configs={c1.ID: c1})
    relabelled = s2.clone()
    relabelled.Spec.Labels = {"a": "b"}
    now = NodeDependencies(secrets={s2.ID: relabelled, s3.ID: s3})
    changes = dependency_changes(sent, now)
    assert [s.ID for s in changes.update_secrets] == [s2.ID, s3.ID]
    assert changes.remove_secrets == [s1.ID]
    assert changes.update_configs == []
    assert changes.remove_configs == [c1.ID]
    assert not dependency_changes(now, now)
    assert dependency_changes(NodeDependencies(), now)
