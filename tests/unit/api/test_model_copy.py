"""``Model.model_copy`` (shoal's faster shallow copy) gives what pydantic's gives."""

import datetime as dt

from pydantic import BaseModel

from shoal.api.ids import new_id
from shoal.api.objects import Service, Task, TaskStatus
from shoal.api.specs import ServiceSpec
from shoal.api.types import TaskState
from shoal.manager.orchestrator.task import new_task


def pydantic_copy(obj, **kw):
    return BaseModel.model_copy(obj, **kw)


def same(a, b) -> bool:
    return (
        type(a) is type(b)
        and a == b
        and a.__pydantic_fields_set__ == b.__pydantic_fields_set__
        and a.__pydantic_extra__ == b.__pydantic_extra__
        and a.to_json() == b.to_json()
    )


def make_task() -> Task:
    spec = ServiceSpec.model_validate(
        {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}}, "Extra": 1}
    )
    return new_task(Service(ID=new_id(), Spec=spec), now=dt.datetime.now(dt.UTC), slot=1)


def test_copy_with_and_without_update_matches_pydantic():
    task = make_task()
    status = TaskStatus(State=TaskState.ASSIGNED, Message="m")
    for obj, update in [
        (task, None),
        (task, {"NodeID": "n1", "Status": status}),
        (task, {"NotAField": 3}),  # unknown names become extras, as in pydantic
        (task.Spec, {"Runtime": "process"}),
        (status, {"Err": "e"}),
    ]:
        assert same(obj.model_copy(update=update), pydantic_copy(obj, update=update))


def test_copy_is_shallow_and_leaves_the_original_alone():
    task = make_task()
    before = task.model_dump()
    copy = task.model_copy(update={"NodeID": "n1", "Unknown": 1})
    assert copy.Spec is task.Spec  # shallow: nested objects shared
    assert copy.__dict__ is not task.__dict__
    assert task.model_dump() == before and task.NodeID != "n1"
    assert "NodeID" in copy.__pydantic_fields_set__


def test_deep_copy_is_pydantic_s():
    task = make_task()
    copy = task.model_copy(deep=True)
    assert copy == task and copy.Spec is not task.Spec
