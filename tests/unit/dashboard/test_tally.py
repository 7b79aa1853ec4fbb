"""The dashboard's task counts follow every change of a task exactly, as a recount would."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.api.base import Version
from shoal.api.objects import Task, TaskStatus
from shoal.api.specs import ResourceRequirements, ResourceReservations, TaskSpec
from shoal.api.types import TaskState
from shoal.dashboard.tally import Tally

STATES = list(TaskState)


def task(
    ident: str,
    service: str,
    node: str | None,
    state: TaskState,
    desired: TaskState,
    version: int = 1,
    cpus: int = 0,
) -> Task:
    return Task(
        ID=ident,
        ServiceID=service,
        NodeID=node,
        Status=TaskStatus(State=state),
        DesiredState=desired,
        SpecVersion=Version(Index=version),
        Spec=TaskSpec(
            Resources=ResourceRequirements(Reservations=ResourceReservations(NanoCPUs=cpus))
        ),
    )


def recount(tasks: dict[str, Task]) -> Tally:
    tally = Tally()
    for t in tasks.values():
        tally.put(t)
    return tally


def snapshot(tally: Tally) -> tuple:
    services = {
        k: (v.tasks, v.running, v.wanted, dict(v.running_by_version))
        for k, v in tally.services.items()
    }
    nodes = {k: (v.running, v.active, v.nano_cpus, v.memory_bytes) for k, v in tally.nodes.items()}
    return services, nodes


def test_counts_running_wanted_updated_and_reservations():
    tally = Tally()
    tally.put(task("a", "web", "n1", TaskState.RUNNING, TaskState.RUNNING, version=2, cpus=5))
    tally.put(task("b", "web", "n1", TaskState.RUNNING, TaskState.RUNNING, version=1, cpus=5))
    tally.put(task("c", "web", None, TaskState.PENDING, TaskState.RUNNING))
    web, n1 = tally.service("web"), tally.node("n1")
    assert (web.tasks, web.running, web.wanted) == (3, 2, 3)
    assert web.running_by_version == {1: 1, 2: 1}
    assert (n1.running, n1.active, n1.nano_cpus) == (2, 2, 10)
    # Shut down: no longer running, wanted or holding its reservation.
    services, nodes = tally.put(
        task("b", "web", "n1", TaskState.SHUTDOWN, TaskState.SHUTDOWN, cpus=5)
    )
    assert (services, nodes) == ({"web"}, {"n1"})
    assert (tally.service("web").running, tally.node("n1").nano_cpus) == (1, 5)
    tally.remove("a")
    tally.remove("b")
    tally.remove("c")
    assert tally.services == {} and tally.nodes == {}


def test_an_unchanged_share_touches_nothing():
    tally = Tally()
    t = task("a", "web", "n1", TaskState.RUNNING, TaskState.RUNNING)
    tally.put(t)
    assert tally.put(t.model_copy(update={"Labels": {"x": "y"}})) == (set(), set())


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_any_sequence_of_changes_matches_a_recount(seed: int):
    rng = random.Random(seed)
    tally = Tally()
    tasks: dict[str, Task] = {}
    for _ in range(60):
        ident = f"t{rng.randrange(12)}"
        if ident in tasks and rng.random() < 0.2:
            del tasks[ident]
            tally.remove(ident)
            continue
        t = task(
            ident,
            rng.choice(["web", "api"]),
            rng.choice([None, "n1", "n2"]),
            rng.choice(STATES),
            rng.choice(STATES),
            version=rng.randrange(3),
            cpus=rng.randrange(3),
        )
        tasks[ident] = t
        tally.put(t)
    assert snapshot(tally) == snapshot(recount(tasks))
