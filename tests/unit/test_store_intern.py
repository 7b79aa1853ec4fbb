"""The store shares one instance of each distinct task spec among the tasks that have it
(shoal.store.intern), on every path into the store, and the checks that make it sound."""

import datetime as dt
import gc
import json

import pytest

from shoal.api import base
from shoal.api.ids import new_id
from shoal.api.objects import Service, Task
from shoal.api.specs import ServiceSpec, TaskSpec
from shoal.manager.orchestrator.task import new_task
from shoal.store import MemoryStore
from shoal.store.intern import FIRST_SWEEP, Interner
from shoal.store.proposal import decode_proposal, encode_proposal
from shoal.store.roundtrip import StoredObjectChanged

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def service(name: str, image: str = "busybox") -> Service:
    spec = ServiceSpec.model_validate(
        {
            "Name": name,
            "Labels": {"tier": "web"},
            "TaskTemplate": {"ContainerSpec": {"Image": image, "Args": ["sleep", "1d"]}},
            "EndpointSpec": {"Ports": [{"TargetPort": 80, "PublishedPort": 8080}]},
        }
    )
    return Service(ID=new_id(), Spec=spec)


def tasks(svc: Service, n: int) -> list[Task]:
    """``n`` tasks of ``svc``, each made from a copy of the service of its own: the parts it
    shares with the service (new_task) are then each task's own, as a follower decodes them,
    or as tasks made from a service read again after a restart have them."""
    return [new_task(svc.clone(), now=NOW, slot=k + 1) for k in range(n)]


def stored(store: MemoryStore, made: list[Task]) -> list[Task]:
    got = [store.view().get(Task, t.ID) for t in made]
    assert all(t is not None for t in got)
    return got  # type: ignore[return-value]


def record_proposals(leader: MemoryStore) -> list[bytes]:
    """The entries ``leader`` commits (applied at once, as a raft leader would), for a
    follower to decode."""
    proposals: list[bytes] = []

    class Recording:
        async def propose(self, proposal):  # type: ignore[no-untyped-def]
            proposals.append(encode_proposal(proposal))
            leader.apply(proposal)

    leader.proposer = Recording()
    return proposals


def assert_shared(got: list[Task]) -> None:
    first = got[0]
    for t in got[1:]:
        assert t.Spec is first.Spec
        assert t.ServiceAnnotations is first.ServiceAnnotations
        assert t.Endpoint is first.Endpoint


async def test_the_tasks_of_a_service_share_its_spec_as_stored_by_the_leader():
    store = MemoryStore()
    web, db = service("web"), service("db", image="postgres")
    made_web, made_db = tasks(web, 3), tasks(db, 2)
    # Each made with its own copy, in separate transactions.
    assert made_web[0].Spec is not made_web[1].Spec
    for t in [*made_web, *made_db]:
        await store.update(lambda tx, t=t: tx.create(t))
    got_web, got_db = stored(store, made_web), stored(store, made_db)
    assert_shared(got_web)
    assert_shared(got_db)
    assert got_web[0].Spec is not got_db[0].Spec
    assert got_web[0].Spec == made_web[0].Spec.clone()  # the same content
    store.close()


async def test_a_follower_shares_the_specs_it_decodes_and_one_version_per_proposal():
    leader, follower = MemoryStore(), MemoryStore()
    proposals = record_proposals(leader)
    made = tasks(service("web"), 4)
    await leader.update(lambda tx: [tx.create(t) for t in made[:2]])
    await leader.update(lambda tx: [tx.create(t) for t in made[2:]])
    for data in proposals:
        follower.apply(decode_proposal(data))
    got = stored(follower, made)
    assert_shared(got)
    assert got[0].Version is got[1].Version and got[0].Version.Index == 1
    assert got[2].Version is got[3].Version and got[2].Version.Index == 2
    assert [t.to_json_text() for t in got] == [t.to_json_text() for t in stored(leader, made)]
    leader.close()
    follower.close()


async def test_a_follower_decodes_a_shared_part_once_and_finds_it_by_its_json(monkeypatch):
    leader, follower = MemoryStore(), MemoryStore()
    proposals = record_proposals(leader)
    web, db = service("web"), service("db", image="postgres")
    made = [*tasks(web, 3), *tasks(db, 3)]
    await leader.update(lambda tx: [tx.create(t) for t in made[:4]])
    await leader.update(lambda tx: [tx.create(t) for t in made[4:]])
    decoded: list[str] = []  # the task templates pydantic validated
    real = base._field_names

    def counting(model):  # type: ignore[no-untyped-def]
        if model is TaskSpec:
            decoded.append(model.__name__)
        return real(model)

    monkeypatch.setattr(base, "_field_names", counting)
    for data in proposals:
        follower.apply(decode_proposal(data, follower.decode_task))
    assert len(decoded) == 2  # one per service, not one per task
    got = stored(follower, made)
    assert_shared(got[:3])
    assert_shared(got[3:])
    assert got[0].Spec is not got[3].Spec
    assert [t.to_json_text() for t in got] == [t.to_json_text() for t in stored(leader, made)]
    # The same JSON decoded without the store's decoder: the same task, field for field.
    plain = [c.obj for data in proposals for c in decode_proposal(data).changes]
    assert [t.to_json_text() for t in plain] == [t.to_json_text() for t in got]
    leader.close()
    follower.close()


async def test_a_restored_snapshot_shares_the_specs():
    store = MemoryStore()
    made = tasks(service("web"), 3)
    await store.update(lambda tx: [tx.create(t) for t in made])
    other = MemoryStore()
    other.restore(store.snapshot())
    assert_shared(stored(other, made))
    store.close()
    other.close()


async def test_a_task_given_a_new_spec_gets_the_new_one_and_the_others_keep_theirs():
    store = MemoryStore()
    svc = service("web")
    made = tasks(svc, 2)
    await store.update(lambda tx: [tx.create(t) for t in made])
    before = stored(store, made)
    changed = before[0].model_copy()
    changed.Spec = before[0].Spec.model_copy(update={"ForceUpdate": 1})
    await store.update(lambda tx: tx.update(changed))
    after = stored(store, made)
    assert after[0].Spec.ForceUpdate == 1
    assert after[1].Spec is before[1].Spec and after[1].Spec.ForceUpdate == 0
    store.close()


async def test_a_shared_spec_changed_in_place_through_one_task_is_caught_on_another():
    # What makes sharing sound: nothing changes a stored object in place. Were a writer to
    # change a shared spec through one task, every task sharing it would change with it:
    # the tests' store checks catch it on those other tasks too.
    store = MemoryStore()
    made = tasks(service("web"), 2)
    await store.update(lambda tx: [tx.create(t) for t in made])
    one, another = stored(store, made)
    assert one.Spec is another.Spec
    one.Spec.ContainerSpec.Args.append("--changed")  # type: ignore[union-attr]
    assert another.Spec.ContainerSpec.Args[-1] == "--changed"  # type: ignore[union-attr]
    with pytest.raises(StoredObjectChanged, match=f"task {another.ID} was changed in place"):
        await store.update(lambda tx: tx.delete(Task, another.ID))


def test_the_interner_forgets_the_specs_no_task_holds_any_more():
    interner = Interner()
    kept = tasks(service("kept"), 2)
    for t in kept:
        interner.task(t)
    for i in range(FIRST_SWEEP + 10):  # a spec per version of a service, each dropped
        dropped = tasks(service(f"s{i}", image=f"image:{i}"), 1)[0]
        if i % 2:
            interner.task(dropped)
        else:  # as a follower does: found by its JSON the next time
            interner.decode_task(json.loads(dropped.to_json_text()))
    gc.collect()
    assert len(interner) < FIRST_SWEEP
    assert len(interner._by_values) < FIRST_SWEEP // 2
    again = tasks(service("kept"), 1)[0]
    interner.task(again)
    assert again.Spec is kept[0].Spec  # in use: remembered through the sweeps
    # Found by their JSON too, and only those still held.
    found = interner.decode_task(json.loads(tasks(service("kept"), 1)[0].to_json_text()))
    assert found.Spec is kept[0].Spec
