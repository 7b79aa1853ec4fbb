import pytest

from shoal.api.ids import new_id
from shoal.api.objects import Cluster, Node, NodeStatus, RootCA, Task
from shoal.api.specs import NodeSpec
from shoal.api.types import NodeRole, NodeState, TaskState
from shoal.ca import tokens
from shoal.ca.rootca import create_root_ca
from shoal.clock import FakeClock
from shoal.errors import (
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfSequence,
    ShoalError,
)
from shoal.manager.controlapi.control import ControlAPI
from shoal.manager.controlapi.filters import Filters
from shoal.store import MemoryStore


def spec(name="web", replicas=1, **extra):
    data = {
        "Name": name,
        "TaskTemplate": {"ContainerSpec": {"Image": "alpine:latest", "Args": ["ping", "x"]}},
        "Mode": {"Replicated": {"Replicas": replicas}},
    }
    data.update(extra)
    return data


@pytest.fixture
async def control():
    store = MemoryStore(clock=FakeClock())
    ca = create_root_ca()
    cluster = Cluster(
        ID=new_id(), RootCA=RootCA(CACert=ca.cert_pem.decode(), CAKey=ca.key_pem.decode())
    )
    cluster.RootCA.JoinTokens.Worker = tokens.generate(ca.cert_pem)
    cluster.RootCA.JoinTokens.Manager = tokens.generate(ca.cert_pem)
    manager = Node(
        ID=new_id(),
        Spec=NodeSpec(Role=NodeRole.MANAGER),
        Role=NodeRole.MANAGER,
        Status=NodeStatus(State=NodeState.READY),
        Description={"Hostname": "manager1"},
    )
    await store.update(lambda tx: (tx.create(cluster), tx.create(manager)))
    return ControlAPI(store, store.clock)


async def test_create_and_find_by_id_name_prefix(control):
    svc = await control.create_service(spec())
    assert control.get_service(svc.ID).ID == svc.ID
    assert control.get_service("web").ID == svc.ID
    assert control.get_service(svc.ID[:5]).ID == svc.ID
    assert svc.Spec.TaskTemplate.Runtime == "container"
    assert svc.SpecVersion is not None and svc.SpecVersion.Index == 0  # as swarmkit


async def test_create_without_name_gets_a_random_one(control):
    svc = await control.create_service(spec(name=""))
    adjective, _, surname = svc.Spec.Name.partition("_")
    assert adjective and surname


async def test_duplicate_name_conflict_and_nothing_changes(control):
    await control.create_service(spec())
    before = control.store.version
    with pytest.raises(Conflict) as err:
        await control.create_service(spec())
    assert str(err.value) == (
        "rpc error: code = AlreadyExists desc = name conflicts with an existing object: "
        "service web already exists"
    )
    assert control.store.version == before
    assert len(control.list_services()) == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (spec(name="bad name"), "name must be valid as a DNS name component"),
        (spec(name="x" * 64), "name must be 63 characters or fewer"),
        (spec(replicas=-1), "Number of replicas must be non-negative"),
        (
            {"Name": "a", "TaskTemplate": {"ContainerSpec": {"Image": ""}}},
            "ContainerSpec: image reference must be provided",
        ),
        (
            spec(
                TaskTemplate={
                    "ContainerSpec": {"Image": "alpine"},
                    "Resources": {"Reservations": {"MemoryBytes": 1024}},
                }
            ),
            "invalid memory value 1024: Must be at least 4MiB",
        ),
    ],
)
async def test_invalid_specs_are_refused(control, data, message):
    with pytest.raises(InvalidArgument) as err:
        await control.create_service(data)
    assert str(err.value) == f"rpc error: code = InvalidArgument desc = {message}"
    assert control.list_services() == []


async def test_constraint_and_enum_errors_in_dockers_words(control):
    bad = spec(
        TaskTemplate={
            "ContainerSpec": {"Image": "alpine"},
            "Placement": {"Constraints": ["node.role=manager"]},
        }
    )
    with pytest.raises(ShoalError) as err:
        await control.create_service(bad)
    assert str(err.value) == (
        "rpc error: code = Unknown desc = constraint expected one operator from ==, !="
    )
    bad = spec(
        TaskTemplate={"ContainerSpec": {"Image": "alpine"}, "RestartPolicy": {"Condition": "bogus"}}
    )
    with pytest.raises(InvalidArgument, match=r'^invalid RestartCondition: "bogus"$'):
        await control.create_service(bad)
    assert control.list_services() == []


async def test_unknown_and_ambiguous_references(control):
    with pytest.raises(NotFound, match=r"^service nope not found$"):
        control.get_service("nope")
    # 37 IDs over 36 possible first characters: two must share one (names with a dash can
    # never be mistaken for an ID prefix).
    ids = [(await control.create_service(spec(f"svc-{i}"))).ID for i in range(37)]
    firsts = [i[0] for i in ids]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    with pytest.raises(InvalidArgument, match="is ambiguous"):
        control.get_service(shared)
    unique = next((c for c in firsts if firsts.count(c) == 1), None)
    if unique is not None:
        assert control.get_service(unique).ID == ids[firsts.index(unique)]


async def test_update_with_stale_version_is_out_of_sequence(control):
    svc = await control.create_service(spec())
    await control.update_service(svc.ID, svc.Version.Index, spec(replicas=3))
    with pytest.raises(OutOfSequence) as err:
        await control.update_service(svc.ID, svc.Version.Index, spec(replicas=5))
    assert str(err.value) == "rpc error: code = Unknown desc = update out of sequence"
    assert control.get_service("web").Spec.Mode.Replicated.Replicas == 3


async def test_update_keeps_previous_spec_and_rollback_swaps(control):
    svc = await control.create_service(spec())
    with pytest.raises(FailedPrecondition, match="does not have a previous spec"):
        await control.update_service(svc.ID, svc.Version.Index, None, rollback=True)
    changed = spec(TaskTemplate={"ContainerSpec": {"Image": "alpine:3"}})
    svc = await control.update_service(svc.ID, svc.Version.Index, changed)
    assert svc.PreviousSpec.TaskTemplate.ContainerSpec.Image == "alpine:latest"
    svc = await control.update_service(svc.ID, svc.Version.Index, None, rollback=True)
    assert svc.Spec.TaskTemplate.ContainerSpec.Image == "alpine:latest"
    assert svc.UpdateStatus.State == "rollback_started"
    assert svc.UpdateStatus.Message == "manually requested rollback"


async def test_mode_change_and_rename_refused(control):
    svc = await control.create_service(spec())
    with pytest.raises(Exception, match="service mode change is not allowed"):
        await control.update_service(svc.ID, svc.Version.Index, spec(Mode={"Global": {}}))
    with pytest.raises(Exception, match="renaming services is not supported"):
        await control.update_service(svc.ID, svc.Version.Index, spec(name="other"))


async def test_insert_defaults(control):
    await control.create_service(spec())
    svc = control.get_service("web", insert_defaults=True)
    assert svc.Spec.UpdateConfig.to_json() == {
        "Parallelism": 1,
        "FailureAction": "pause",
        "Monitor": 5_000_000_000,
        "MaxFailureRatio": 0,
        "Order": "stop-first",
    }
    rp = svc.Spec.TaskTemplate.RestartPolicy
    assert (rp.Condition, rp.Delay, rp.MaxAttempts) == ("any", 5_000_000_000, 0)
    assert control.get_service("web").Spec.UpdateConfig is None  # stored spec untouched


async def test_what_dockers_daemon_fills_in_as_it_converts_a_spec(control):
    # As docker-py writes a spec: lower-case keys, no failure action, order, mode, isolation.
    svc = await control.create_service(
        spec(
            UpdateConfig={"parallelism": 2},
            RollbackConfig={"Parallelism": 1, "order": "start-first"},
            EndpointSpec={"ports": [{"TargetPort": 80, "PublishMode": "host"}]},
        )
    )
    shown = svc.to_api()["Spec"]
    assert shown["UpdateConfig"] == {
        "Parallelism": 2,
        "FailureAction": "pause",
        "MaxFailureRatio": 0,
        "Order": "stop-first",
    }
    assert shown["RollbackConfig"]["Order"] == "start-first"
    assert shown["EndpointSpec"]["Mode"] == "vip"
    assert shown["TaskTemplate"]["ContainerSpec"]["Isolation"] == "default"
    assert control.get_service("web").to_api()["Spec"] == shown


async def test_list_filters(control):
    await control.create_service(spec("web", Labels={"tier": "front"}))
    await control.create_service(spec("db", Mode={"Global": {}}))
    names = lambda f: sorted(s.Spec.Name for s in control.list_services(Filters(f)))  # noqa: E731
    assert names({"name": ["w"]}) == ["web"]
    assert names({"mode": ["global"]}) == ["db"]
    assert names({"label": ["tier=front"]}) == ["web"]
    with pytest.raises(InvalidArgument, match="Invalid filter 'bogus'"):
        control.list_services(Filters({"bogus": ["x"]}))


async def test_service_status_counts_running_tasks(control):
    svc = await control.create_service(spec(replicas=3))
    task = Task(ID=new_id(), ServiceID=svc.ID, Slot=1, DesiredState=TaskState.RUNNING)
    task.Status.State = TaskState.RUNNING
    await control.store.update(lambda tx: tx.create(task))
    [listed] = control.list_services(status=True)
    assert listed.ServiceStatus.RunningTasks == 1
    assert listed.ServiceStatus.DesiredTasks == 3


async def test_task_filters_resolve_service_names(control):
    svc = await control.create_service(spec())
    task = Task(
        ID=new_id(),
        ServiceID=svc.ID,
        Slot=1,
        DesiredState=TaskState.RUNNING,
        ServiceAnnotations={"Name": "web"},
    )
    await control.store.update(lambda tx: tx.create(task))
    assert [t.ID for t in control.list_tasks(Filters({"service": ["web"]}))] == [task.ID]
    assert control.list_tasks(Filters({"desired-state": ["shutdown"]})) == []
    with pytest.raises(InvalidArgument, match="Invalid desired-state filter: 'bogus'"):
        control.list_tasks(Filters({"desired-state": ["bogus"]}))
    with pytest.raises(NotFound):
        control.list_tasks(Filters({"service": ["nope"]}))


async def test_task_label_filter_matches_the_service_labels(control):
    task = Task(
        ID=new_id(),
        ServiceID="s1",
        Slot=1,
        ServiceAnnotations={"Name": "app_web", "Labels": {"com.docker.stack.namespace": "app"}},
    )
    await control.store.update(lambda tx: tx.create(task))
    stack = Filters({"label": ["com.docker.stack.namespace=app"]})
    assert [t.ID for t in control.list_tasks(stack)] == [task.ID]
    assert control.list_tasks(Filters({"label": ["com.docker.stack.namespace=other"]})) == []


async def test_cannot_demote_last_manager_or_remove_ready_node(control):
    [manager] = control.list_nodes()
    demoted = manager.Spec.model_dump()
    demoted["Role"] = "worker"
    with pytest.raises(FailedPrecondition, match="attempting to demote the last manager"):
        await control.update_node(manager.ID, manager.Version.Index, demoted)
    worker = Node(
        ID=new_id(), Status=NodeStatus(State=NodeState.READY), Description={"Hostname": "worker1"}
    )
    await control.store.update(lambda tx: tx.create(worker))
    with pytest.raises(FailedPrecondition, match="is not down and can't be removed"):
        await control.remove_node("worker1")
    await control.remove_node("worker1", force=True)
    assert [n.ID for n in control.list_nodes()] == [manager.ID]


async def test_rotate_join_tokens(control):
    cluster = control.get_cluster()
    old = cluster.RootCA.JoinTokens.model_copy()
    await control.update_cluster(
        cluster.Version.Index, cluster.Spec.model_dump(), rotate_worker_token=True
    )
    new = control.get_cluster().RootCA.JoinTokens
    assert new.Worker != old.Worker and new.Manager == old.Manager
    assert tokens.parse(new.Worker).ca_digest == tokens.parse(old.Worker).ca_digest


async def test_cluster_spec_validation(control):
    cluster = control.get_cluster()
    bad = cluster.Spec.model_dump()
    bad["CAConfig"]["NodeCertExpiry"] = 60 * 1_000_000_000
    with pytest.raises(InvalidArgument, match="minimum certificate expiry time is: 1h0m0s"):
        await control.update_cluster(cluster.Version.Index, bad)
