import datetime as dt

from shoal.api.base import Version
from shoal.api.specs import (
    EndpointPortConfig,
    EndpointSpec,
    NetworkAttachmentConfig,
    ReplicatedService,
)
from shoal.api.types import NodeAvailability, NodeState, TaskState
from shoal.manager.orchestrator.task import (
    SlotKey,
    invalid_node,
    is_global,
    is_replicated,
    is_task_dirty,
    new_task,
    newest,
    slot_key,
)
from tests.unit.orchestrator.helpers import node, service, task

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def test_new_task_follows_the_contract():
    svc = service("web")
    svc.Spec.Labels = {"a": "b"}
    svc.Spec.EndpointSpec = EndpointSpec(Ports=[EndpointPortConfig(TargetPort=80)])
    svc.SpecVersion = Version(Index=7)
    t = new_task(svc, now=NOW, slot=3)
    assert len(t.ID) == 25
    assert (t.ServiceID, t.Slot, t.NodeID) == (svc.ID, 3, None)
    # The service's own parts, shared (stored objects never change in place).
    assert t.Spec is svc.Spec.TaskTemplate
    assert t.ServiceAnnotations.Name == "web" and t.ServiceAnnotations.Labels == {"a": "b"}
    assert t.SpecVersion == Version(Index=7)
    assert t.Endpoint is svc.Spec.EndpointSpec
    assert t.DesiredState == TaskState.RUNNING
    # No network to attach: pending at once, as the allocator would have made it.
    status = (t.Status.State, t.Status.Timestamp, t.Status.Message)
    assert status == (TaskState.PENDING, NOW, "pending task scheduling")
    assert t.name == "web.3"


def test_a_new_task_with_networks_waits_new_for_the_allocator():
    svc = service("web")
    svc.Spec.TaskTemplate.Networks = [NetworkAttachmentConfig(Target="net1")]
    t = new_task(svc, now=NOW, slot=1)
    assert (t.Status.State, t.Status.Message) == (TaskState.NEW, "created")


def test_new_task_global_and_ready():
    svc = service("mon", mode_global=True)
    t = new_task(svc, now=NOW, node_id="n1", desired=TaskState.READY)
    assert (t.Slot, t.NodeID, t.DesiredState) == (None, "n1", TaskState.READY)
    assert is_global(svc) and not is_replicated(svc)
    assert slot_key(svc, t) == SlotKey(svc.ID, None, "n1")


def test_a_new_spec_leaves_the_tasks_made_from_the_old_one_as_they_were():
    """A task shares its service's template; a writer changes a service as it changes any
    stored object, on a copy (``clone``), so the tasks keep the spec they were made from."""
    svc = service("web")
    t = new_task(svc, now=NOW, slot=1)
    updated = svc.clone()
    updated.Spec.TaskTemplate.ContainerSpec.Image = "other"
    assert t.Spec.ContainerSpec.Image == "img:1"
    assert new_task(updated, now=NOW, slot=1).Spec.ContainerSpec.Image == "other"


def _dirty(svc, t, n=None):
    return is_task_dirty(svc, t, n)


def test_clean_task_is_not_dirty():
    svc = service()
    assert not _dirty(svc, new_task(svc, now=NOW, slot=1))


def test_same_spec_version_is_never_dirty():
    svc = service()
    t = new_task(svc, now=NOW, slot=1)
    svc = svc.clone()  # as a writer changes a stored service
    svc.Spec.TaskTemplate.ContainerSpec.Image = "new"
    assert not _dirty(svc, t)  # same SpecVersion: trusted without comparing
    svc.SpecVersion = Version(Index=9)
    assert _dirty(svc, t)


def test_image_env_force_update_make_dirty():
    base = service()
    base.SpecVersion = None
    for change in (
        lambda s: setattr(s.Spec.TaskTemplate.ContainerSpec, "Image", "img:2"),
        lambda s: setattr(s.Spec.TaskTemplate.ContainerSpec, "Env", ["A=1"]),
        lambda s: setattr(s.Spec.TaskTemplate, "ForceUpdate", 1),
        lambda s: setattr(s.Spec, "EndpointSpec", EndpointSpec(Ports=[])),
    ):
        t = new_task(base, now=NOW, slot=1)
        svc = base.clone()
        change(svc)
        assert _dirty(svc, t)


def test_replicas_labels_update_config_do_not_make_dirty():
    svc = service()
    svc.SpecVersion = None
    t = new_task(svc, now=NOW, slot=1)
    svc.Spec.Mode.Replicated = ReplicatedService(Replicas=9)
    svc.Spec.Labels = {"x": "y"}
    svc.Spec.UpdateConfig = None
    assert not _dirty(svc, t)


def test_placement_only_change_is_clean_while_the_node_fits():
    svc = service()
    svc.SpecVersion = None
    t = new_task(svc, now=NOW, slot=1)
    svc = svc.clone()  # as a writer changes a stored service
    svc.Spec.TaskTemplate.Placement.Constraints = ["node.labels.zone==a"]
    assert not _dirty(svc, t, node("n1", labels={"zone": "a"}))
    assert _dirty(svc, t, node("n1", labels={"zone": "b"}))
    assert _dirty(svc, t, None)
    svc.Spec.TaskTemplate.ContainerSpec.Image = "img:2"
    assert _dirty(svc, t, node("n1", labels={"zone": "a"}))


def test_invalid_node():
    assert invalid_node(None)
    assert invalid_node(node("n", state=NodeState.DOWN))
    assert invalid_node(node("n", availability=NodeAvailability.DRAIN))
    assert not invalid_node(node("n", availability=NodeAvailability.PAUSE))
    assert not invalid_node(node("n", state=NodeState.UNKNOWN))


def test_newest_by_status_timestamp():
    svc = service()
    a = task(svc, slot=1, at=NOW)
    b = task(svc, slot=1, at=NOW + dt.timedelta(seconds=1))
    assert newest([b, a]) is b and newest([]) is None
