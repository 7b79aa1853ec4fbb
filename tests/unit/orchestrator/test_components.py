import asyncio

from shoal.api.objects import Node, Service
from shoal.api.specs import UpdateConfig
from shoal.api.types import NodeState, TaskState, UpdateState
from shoal.manager.orchestrator import (
    ConstraintEnforcer,
    GlobalOrchestrator,
    JobOrchestrator,
    ReplicatedOrchestrator,
    RestartSupervisor,
    TaskReaper,
    UpdateSupervisor,
    apply_spec_update,
    orchestration_components,
)
from tests.unit.orchestrator.helpers import change, cluster, node, put, service, settle


def test_components_share_their_supervisors(store, clock):
    parts = orchestration_components(store, clock)
    kinds = [type(p) for p in parts]
    assert kinds == [
        RestartSupervisor,
        UpdateSupervisor,
        ReplicatedOrchestrator,
        GlobalOrchestrator,
        JobOrchestrator,
        TaskReaper,
        ConstraintEnforcer,
    ]
    restarts, updates, replicated, global_ = parts[:4]
    assert replicated.restarts is restarts and global_.restarts is restarts
    assert replicated.updates is updates and global_.updates is updates


async def test_a_swarm_in_miniature(store, clock, sim, running):
    await put(store, cluster(3), node("n1"), node("n2"), node("n3"))
    await running.start(*orchestration_components(store, clock))
    web = service("web", replicas=3, update=UpdateConfig(Parallelism=2))
    mon = service("mon", mode_global=True)
    await put(store, web, mon)
    await sim.converge()
    assert len(sim.running(web.ID)) == 3 and len(sim.running(mon.ID)) == 3

    # A node dies: web's task there moves, mon's is shut down.
    await change(store, Node, "n3", lambda n: setattr(n.Status, "State", NodeState.DOWN))
    await settle(store)
    await clock.advance(5)
    await sim.converge()
    assert {t.NodeID for t in sim.running(web.ID)} <= {"n1", "n2"}
    assert len(sim.running(web.ID)) == 3 and len(sim.running(mon.ID)) == 2

    # Three rolling updates: history stays within the retention limit of 3 per slot.
    for image in ("img:2", "img:3", "img:4"):

        def upd(tx, image=image):
            s = tx.get(Service, web.ID)
            spec = s.Spec.clone()
            spec.TaskTemplate.ContainerSpec.Image = image
            tx.update(apply_spec_update(s, spec))

        await store.update(upd)
        for _ in range(3):
            await sim.converge()
            await clock.advance(5)
        assert sorted(t.Spec.ContainerSpec.Image for t in sim.running(web.ID)) == [image] * 3
        assert store.view().get(Service, web.ID).UpdateStatus.State == UpdateState.COMPLETED
    for slot in (1, 2, 3):
        assert len(store.view().find(type(sim.tasks()[0]), "slot", (web.ID, slot))) <= 3

    # Removal: every task goes once stopped.
    await store.update(lambda tx: tx.delete(Service, web.ID))
    await sim.converge()
    assert sim.tasks(web.ID) == []
    assert all(t.DesiredState == TaskState.RUNNING for t in sim.live(mon.ID))


async def test_cancelling_leaves_nothing_running(store, clock, sim):
    before = asyncio.all_tasks()
    await put(store, node("n1"))
    parts = orchestration_components(store, clock)
    tasks = [asyncio.create_task(p.run()) for p in parts]
    await put(store, service("web", replicas=2))
    await sim.converge()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await settle(store)
    assert asyncio.all_tasks() <= before | {asyncio.current_task()}
