"""Stored objects share their pydantic field-name sets, and copies made to change them do
not."""

import datetime as dt

from shoal.api.base import share_field_sets
from shoal.api.ids import new_id
from shoal.api.objects import Service, Task
from shoal.api.specs import ServiceSpec
from shoal.manager.orchestrator.task import new_task


def decoded_tasks(n: int) -> list[Task]:
    svc = Service(ID=new_id(), Spec=ServiceSpec.model_validate({"Name": "web"}))
    now = dt.datetime.now(dt.UTC)
    return [Task.model_validate(new_task(svc, now=now, slot=i).to_json()) for i in range(n)]


def test_equal_name_sets_are_one_set_and_values_are_unchanged():
    a, b = decoded_tasks(2)
    before = (a.to_json(), a.model_fields_set, a.Spec.model_fields_set)
    share_field_sets(a)
    share_field_sets(b)
    assert a.__pydantic_fields_set__ is b.__pydantic_fields_set__
    assert a.Spec.__pydantic_fields_set__ is b.Spec.__pydantic_fields_set__
    assert (a.to_json(), a.model_fields_set, a.Spec.model_fields_set) == before


def test_a_copy_changed_afterwards_leaves_the_shared_set_alone():
    a, b = decoded_tasks(2)
    share_field_sets(a)
    share_field_sets(b)
    names = set(b.model_fields_set)
    changed = a.model_copy()
    changed.NodeID = "n1"  # a field not given when decoded (None is left out)
    deep = a.clone()
    deep.Spec.ForceUpdate = 3
    assert "NodeID" not in names and b.model_fields_set == names
    assert b.Spec.model_fields_set == a.Spec.model_fields_set


def test_a_copy_of_a_shared_object_is_shared_where_it_is_new():
    # As the raft leader stores a writer's copy of a stored task: its own set and its new
    # status shared, the parts it took from the stored task (shared already) left as they are.
    a, b = decoded_tasks(2)
    share_field_sets(a)
    copy = a.model_copy()
    copy.NodeID = "n1"
    copy.Status = copy.Status.model_copy(update={"Message": "started"})
    assert copy.__pydantic_fields_set__ is not a.__pydantic_fields_set__
    share_field_sets(copy)
    share_field_sets(b)
    assert copy.Spec is a.Spec  # untouched: shared with a already
    assert copy.Status.__pydantic_fields_set__ is b.Status.__pydantic_fields_set__
    with_node = Task.model_validate(dict(b.to_json(), NodeID="n2"))
    share_field_sets(with_node)
    assert copy.__pydantic_fields_set__ is with_node.__pydantic_fields_set__
