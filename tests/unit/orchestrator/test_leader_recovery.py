"""A new leader's restart supervisor rebuilds the restart history and the delayed starts in
steps, letting the event loop run in between (issue 15): the result must be what one read of
the store at the start gives, and no orchestrator may decide before it is whole."""

import asyncio
import datetime as dt
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

import shoal.clock
from shoal.api.objects import Node, Service, Task
from shoal.api.specs import SECOND, RestartPolicy
from shoal.api.types import NodeAvailability, NodeState, TaskState
from shoal.clock import FakeClock
from shoal.manager.orchestrator import (
    global_orchestrator,
    orchestration_components,
    replicated,
    restart,
    task_reaper,
)
from shoal.manager.orchestrator.restart import RestartSupervisor
from shoal.manager.orchestrator.restart_policy import RestartHistory, restart_policy
from shoal.manager.orchestrator.task import SlotKey, slot_key, spec_version_index
from shoal.store import MemoryStore
from shoal.store.proposal import Action, Change, Proposal
from tests.unit.orchestrator.helpers import change, cluster, node, put, service, settle, task


@contextmanager
def every_step_yields(really: bool = True) -> Iterator[None]:
    """A new leader's first reads let the loop run after every task they look at (or, if not
    ``really``, never)."""
    with ExitStack() as stack:
        stack.enter_context(patch.object(shoal.clock, "LOOP_SLICE", 0.0 if really else 3600.0))
        for module in (restart, replicated, global_orchestrator, task_reaper):
            stack.enter_context(patch.object(module, "STEP", 1 if really else 10**9))
        yield


# --- the same result as one read -------------------------------------------------------------


def reference_recovery(
    store: MemoryStore, now: dt.datetime
) -> tuple[RestartHistory, dict[str, float]]:
    """The recovery as it was when it ran in one go: (history, task ID -> start delay)."""
    view = store.view()
    history = RestartHistory()
    starts: dict[str, float] = {}
    by_slot: dict[SlotKey, list[Task]] = {}
    for t in view.list(Task):
        svc = view.get(Service, t.ServiceID) if t.ServiceID else None
        if svc is None:
            continue
        by_slot.setdefault(slot_key(svc, t), []).append(t)
        if t.DesiredState != TaskState.READY or t.Status.State > TaskState.COMPLETE:
            continue
        delay = restart_policy(t.Spec).delay_seconds
        left = (t.Status.Timestamp + dt.timedelta(seconds=delay) - now).total_seconds()
        starts[t.ID] = max(0.0, min(delay, left))
    for key, tasks in by_slot.items():
        latest = max((spec_version_index(t.SpecVersion) or 0) for t in tasks)
        current = sorted(
            (t for t in tasks if (spec_version_index(t.SpecVersion) or 0) == latest),
            key=lambda t: (t.CreatedAt, t.ID),
        )
        for t in current[1:]:
            history.record(key, t, t.CreatedAt)
    return history, starts


policies = st.builds(
    RestartPolicy,
    Delay=st.sampled_from([None, 0, 5 * SECOND]),
    MaxAttempts=st.sampled_from([None, 0, 1, 3]),
    Window=st.sampled_from([None, 0, 10 * SECOND]),
)
tasks_drawn = st.lists(
    st.tuples(
        st.integers(0, 3),  # service (3: one that was deleted)
        st.integers(1, 3),  # slot, or node for a global service
        st.integers(0, 2),  # spec version
        st.integers(0, 4),  # created, seconds after t0 (ties happen)
        st.sampled_from([TaskState.RUNNING, TaskState.READY, TaskState.SHUTDOWN]),
        st.sampled_from([TaskState.NEW, TaskState.RUNNING, TaskState.FAILED, TaskState.COMPLETE]),
        st.integers(0, 20),  # status timestamp, seconds after t0
        policies,  # a task made for an older spec may have another policy
    ),
    max_size=25,
)


class Recording(RestartSupervisor):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.starts: dict[str, float] = {}

    def delay_start(self, old, new_task_id, delay, wait_stop):
        self.starts[new_task_id] = max(0.0, delay)
        return super().delay_start(old, new_task_id, delay, wait_stop)


@settings(max_examples=80, deadline=None)
@given(
    modes=st.lists(st.booleans(), min_size=3, max_size=3),
    service_policies=st.lists(policies, min_size=3, max_size=3),
    drawn=tasks_drawn,
)
def test_recovery_in_steps_gives_what_one_read_gives(modes, service_policies, drawn):
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    services = [
        service(f"s{i}", mode_global=modes[i], restart=service_policies[i]) for i in range(3)
    ]
    gone = service("gone")
    objects = list(services)
    for n, (s, where, version, created, desired, state, stamp, policy) in enumerate(drawn):
        svc = [*services, gone][s]
        is_global = s < 3 and modes[s]
        t = task(
            svc,
            slot=None if is_global else where,
            node_id=f"n{where}",
            state=state,
            desired=desired,
            at=t0 + dt.timedelta(seconds=stamp),
            task_id=f"t{n:02d}",
        )
        t.Spec.RestartPolicy = policy
        t.SpecVersion.Index = version
        t.CreatedAt = t0 + dt.timedelta(seconds=created)
        objects.append(t)

    async def scenario() -> None:
        clock = FakeClock(t0)
        await clock.advance(7)
        store = MemoryStore(clock=clock)
        store.apply(Proposal(1, [Change(Action.CREATE, o) for o in objects]))
        expected_history, expected_starts = reference_recovery(store, clock.now())
        sup = Recording(store, clock)
        with every_step_yields():
            running = asyncio.create_task(sup.run())
            await sup.recovered()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        assert sup.history._by_service == expected_history._by_service
        assert sup.starts == expected_starts
        store.close()

    asyncio.run(scenario())


# --- no decision before it is whole ----------------------------------------------------------


async def test_no_orchestrator_decides_before_the_history_is_rebuilt(store, clock, running):
    """A slot whose one restart attempt is spent, and a replacement waiting out its restart
    delay on a node since drained: acting on a history still being rebuilt would restart the
    first past MaxAttempts and replace the second at once."""
    spent = service("spent", replicas=1, restart=RestartPolicy(MaxAttempts=1, Delay=0))
    waiting = service("waiting", replicas=1, restart=RestartPolicy(Delay=10 * SECOND))
    first = task(spent, slot=1, node_id="n1", state=TaskState.FAILED, desired=TaskState.SHUTDOWN)
    second = task(spent, slot=1, node_id="n1", state=TaskState.FAILED)
    ready = task(waiting, slot=1, node_id="n2", state=TaskState.ASSIGNED, desired=TaskState.READY)
    ready.Status.Timestamp = clock.now()
    await put(store, node("n1"), node("n2"), spent, waiting, first)
    await clock.advance(1)
    await put(store, second, ready)  # created after ``first``: the slot's one restart
    await change(
        store, Node, "n2", lambda n: setattr(n.Spec, "Availability", NodeAvailability.DRAIN)
    )

    with every_step_yields():
        await running.start(*orchestration_components(store, clock))
        await settle(store)
    view = store.view()
    assert {t.ID for t in view.find(Task, "slot", (spent.ID, 1))} == {first.ID, second.ID}
    assert view.get(Task, second.ID).DesiredState == TaskState.SHUTDOWN
    # The replacement waits out its delay, then is restarted off the drained node.
    assert [t.ID for t in view.find(Task, "slot", (waiting.ID, 1))] == [ready.ID]
    assert view.get(Task, ready.ID).DesiredState == TaskState.READY
    await clock.advance(10)
    await settle(store)
    slot = store.view().find(Task, "slot", (waiting.ID, 1))
    assert len(slot) == 2 and store.view().get(Task, ready.ID).DesiredState > TaskState.RUNNING


# --- every first read in steps: the same outcome -----------------------------------------------


def leader_change_store() -> list:
    """A store as a new leader may find it: history beyond the retention limit, a failed task,
    tasks on a node that went down, a global service, a task whose service is gone, a slot
    whose restart attempts are spent and a replacement waiting out its delay."""
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    web = service("web", replicas=3, service_id="web")
    capped = service(
        "capped", replicas=1, restart=RestartPolicy(MaxAttempts=2, Delay=0), service_id="capped"
    )
    mon = service("mon", mode_global=True, service_id="mon")
    slow = service("slow", restart=RestartPolicy(Delay=30 * SECOND), service_id="slow")
    gone = service("gone", service_id="gone")
    objs: list = [cluster(3), node("n1"), node("n2"), node("n3", state=NodeState.DOWN)]
    objs += [web, capped, mon, slow]
    n = 0

    def add(svc, **kw):
        nonlocal n
        n += 1
        t = task(svc, task_id=f"t{n:03d}", at=t0 + dt.timedelta(seconds=n), **kw)
        t.CreatedAt = t0 + dt.timedelta(seconds=n)
        objs.append(t)

    stopped = {"state": TaskState.SHUTDOWN, "desired": TaskState.SHUTDOWN}
    for _ in range(5):
        add(web, slot=1, node_id="n1", **stopped)
    add(web, slot=1, node_id="n1")
    add(web, slot=2, node_id="n2", state=TaskState.FAILED)
    add(web, slot=3, node_id="n3")
    for _ in range(2):
        add(capped, slot=1, node_id="n1", state=TaskState.FAILED, desired=TaskState.SHUTDOWN)
    add(capped, slot=1, node_id="n1", state=TaskState.FAILED)
    for node_id in ("n1", "n2", "n3"):
        add(mon, node_id=node_id)
    add(mon, node_id="n1", state=TaskState.FAILED, desired=TaskState.SHUTDOWN)
    add(gone, slot=1, node_id="n1")
    add(slow, slot=1, node_id="n2", state=TaskState.FAILED, desired=TaskState.SHUTDOWN)
    add(slow, slot=1, state=TaskState.NEW, desired=TaskState.READY)
    objs[-1].Status.Timestamp = t0 + dt.timedelta(seconds=55)  # 25 s of its delay left
    return objs


async def start_leader(yield_every_step: bool) -> tuple[dict, dict]:
    """Start a new leader's orchestration on ``leader_change_store()``, let it settle: (the
    first tasks' desired and observed states, the number of tasks per slot or node)."""
    clock = FakeClock(dt.datetime(2026, 1, 1, 0, 1, tzinfo=dt.UTC))
    store = MemoryStore(clock=clock)
    store.apply(Proposal(1, [Change(Action.CREATE, o) for o in leader_change_store()]))
    parts = orchestration_components(store, clock)
    with every_step_yields(yield_every_step):
        started = [asyncio.create_task(p.run()) for p in parts]
        await settle(store)
        await clock.advance(10)
        await settle(store)
    for s in started:
        s.cancel()
    await asyncio.gather(*started, return_exceptions=True)
    tasks = store.view().list(Task)
    store.close()
    states = {t.ID: (t.DesiredState, t.Status.State) for t in tasks if len(t.ID) == 4}
    per_slot: dict = {}
    for t in tasks:
        where = (t.ServiceID, t.Slot, None if t.Slot is not None else t.NodeID)
        per_slot[where] = per_slot.get(where, 0) + 1
    return states, per_slot


async def test_a_new_leader_reading_in_steps_ends_where_one_read_ends():
    in_one_go = await start_leader(yield_every_step=False)
    in_steps = await start_leader(yield_every_step=True)
    assert in_steps == in_one_go
    states, per_slot = in_one_go
    assert "t016" not in states  # its service is gone
    assert per_slot[("web", 1, None)] == 3  # the retention limit
    assert per_slot[("capped", 1, None)] == 3  # no restart past MaxAttempts (2)
    assert states["t008"][0] == TaskState.SHUTDOWN  # moved off the node that went down
    assert states["t018"][0] == TaskState.READY  # still in its restart delay
