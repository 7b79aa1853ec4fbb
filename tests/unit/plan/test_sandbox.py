"""The plan's sandbox: the same deciding loops as a leading manager, a copy that leaves the
real store alone, and simulated time."""

import asyncio

import pytest

from shoal.api.objects import Task
from shoal.api.types import TaskState
from shoal.errors import ShoalError
from shoal.manager.controlapi.control import ControlAPI
from shoal.manager.nodeca.rotation import RootRotator
from shoal.manager.plan import plan_service_create, plan_service_update
from shoal.manager.plan.sandbox import Sandbox, copy_store, leader_components
from shoal.manager.plan.sim_clock import SimulatedClock
from tests.unit.orchestrator.helpers import node, service, task
from tests.unit.plan.cluster import daemon_leader_components


def test_the_sandbox_runs_the_loops_a_leader_runs_that_decide_about_tasks(store, clock):
    # Certificate rotation has no say in tasks; every other loop the daemon's leader runs must
    # run in a plan, or the plan would leave out what it does.
    daemon = {type(c) for c in daemon_leader_components(store, clock)} - {RootRotator}
    assert {type(c) for c in leader_components(store, clock)} == daemon


async def test_the_copy_shares_objects_and_leaves_the_real_store_alone(store, clock):
    web = service("web")
    t = task(web, slot=1, node_id="n1")

    def fill(tx):
        tx.create(node("n1"))
        tx.create(web)
        tx.create(t)

    await store.update(fill)
    copy = copy_store(store, clock)
    assert copy.version == store.version
    assert copy.view().get(Task, t.ID) is store.view().get(Task, t.ID)

    def stop(tx):
        changed = tx.get(Task, t.ID).clone()
        changed.DesiredState = TaskState.SHUTDOWN
        tx.update(changed)

    await copy.update(stop)
    assert store.view().get(Task, t.ID).DesiredState == "running"
    assert store.version < copy.version


async def test_simulated_time_jumps_to_the_next_deadline(clock):
    sim = SimulatedClock(clock.now())
    woken: list[float] = []

    async def sleeper(seconds: float) -> None:
        await sim.sleep(seconds)
        woken.append(sim.elapsed)

    tasks = [asyncio.create_task(sleeper(s)) for s in (30, 10)]
    cancelled = asyncio.create_task(sleeper(5))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    assert sim.next_deadline() == 10  # the cancelled sleeper is forgotten
    assert sim.advance_to_next()
    await asyncio.sleep(0)
    assert woken == [10]
    assert sim.advance_to_next()
    await asyncio.gather(*tasks)
    assert woken == [10, 30] and sim.now() == clock.now() + (sim.now() - clock.now())
    assert not sim.advance_to_next()


async def test_an_empty_sandbox_settles(store, clock):
    async with Sandbox(store, clock) as box:
        assert await box.settle()
        assert box.rounds == 0


async def test_a_plan_leaves_no_loop_running(store, clock):
    def fill(tx):
        for n in ("n1", "n2"):
            tx.create(node(n))

    await store.update(fill)
    running = asyncio.all_tasks()
    spec = {
        "Name": "web",
        "TaskTemplate": {"ContainerSpec": {"Image": "img"}, "Runtime": "process"},
    }
    plan = await plan_service_create(store, clock, {**spec, "UpdateConfig": {"Delay": 10**9}})
    assert plan.services[0].count("create") == 1
    assert asyncio.all_tasks() <= running


@pytest.mark.parametrize(
    "bad",
    [
        {"Name": "bad name", "TaskTemplate": {"ContainerSpec": {"Image": "img"}}},
        {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": ""}}},
        {
            "Name": "web",
            "TaskTemplate": {
                "ContainerSpec": {"Image": "img"},
                "Placement": {"Constraints": ["node.role=manager"]},
            },
        },
    ],
)
async def test_refused_input_gets_the_real_calls_error_and_changes_nothing(store, clock, bad):
    control = ControlAPI(store, clock)
    with pytest.raises(ShoalError) as real:
        await control.create_service(bad)
    version = store.version
    with pytest.raises(ShoalError) as planned:
        await plan_service_create(store, clock, bad)
    assert (type(planned.value), str(planned.value)) == (type(real.value), str(real.value))
    assert store.version == version


async def test_an_update_out_of_sequence_is_refused_as_the_real_one(store, clock):
    control = ControlAPI(store, clock)
    spec = {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "img"}}}
    svc = await control.create_service(spec)
    with pytest.raises(ShoalError, match="update out of sequence"):
        await plan_service_update(store, clock, "web", svc.Version.Index - 1, spec)
    with pytest.raises(ShoalError, match="service nosuch not found"):
        await plan_service_update(store, clock, "nosuch", svc.Version.Index, spec)
