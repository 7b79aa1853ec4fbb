import datetime as dt
from collections import Counter

from shoal.api.types import NodeAvailability, NodeState, TaskState
from shoal.manager.scheduler import (
    ASSIGNED_MESSAGE,
    PREASSIGNED_MESSAGE,
    NodeInfo,
    NodeSet,
    Pipeline,
    ReadyFilter,
    ResourceFilter,
    plan,
)
from tests.unit.scheduler.factories import GB, make_node, make_task, spread

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def running_on(task, node_id):
    return task.model_copy(
        update={
            "NodeID": node_id,
            "Status": task.Status.model_copy(update={"State": TaskState.RUNNING}),
        }
    )


def nodeset(*nodes, tasks=()):
    return NodeSet.build(nodes, tasks)


def placement(result):
    return Counter(t.NodeID for t in result.assigned)


# --- ranking ---------------------------------------------------------------------------------


def test_three_tasks_over_three_nodes_one_each():
    nodes = nodeset(make_node("a"), make_node("b"), make_node("c"))
    result = plan(nodes, [make_task("web", i) for i in (1, 2, 3)], NOW)
    assert placement(result) == {"a": 1, "b": 1, "c": 1}
    assert result.unplaced == []


def test_assigned_task_fields():
    task = make_task("web", 1)
    result = plan(nodeset(make_node("a")), [task], NOW)
    (new,) = result.assigned
    assert new.ID == task.ID
    assert new.NodeID == "a"
    assert new.Status.State == TaskState.ASSIGNED
    assert new.Status.Message == ASSIGNED_MESSAGE == "scheduler assigned task to node"
    assert new.Status.Timestamp == NOW
    assert new.Status.Err is None
    # the stored task is left alone
    assert task.NodeID is None and task.Status.State == TaskState.PENDING


def test_node_with_most_of_the_service_gets_new_tasks_last():
    busy = [running_on(make_task("web", i), "a") for i in (1, 2)]
    nodes = nodeset(make_node("a"), make_node("b"), make_node("c"), tasks=busy)
    result = plan(nodes, [make_task("web", i) for i in (3, 4, 5, 6)], NOW)
    # b and c catch up with a first (two each), then all three are level
    assert placement(result) == {"b": 2, "c": 2}
    result = plan(nodes, [make_task("web", i) for i in (7, 8, 9)], NOW)
    assert placement(result) == {"a": 1, "b": 1, "c": 1}


def test_total_tasks_break_ties():
    other = [running_on(make_task("db", i), "a") for i in (1, 2, 3)]
    other += [running_on(make_task("db", 4), "b")]
    nodes = nodeset(make_node("a"), make_node("b"), make_node("c"), tasks=other)
    result = plan(nodes, [make_task("web", 1)], NOW)
    assert placement(result) == {"c": 1}
    result = plan(nodes, [make_task("web", 2)], NOW)
    assert placement(result) == {"b": 1}


def test_many_tasks_spread_evenly():
    nodes = nodeset(*(make_node(f"n{i}") for i in range(7)))
    result = plan(nodes, [make_task("web", i) for i in range(1, 51)], NOW)
    counts = placement(result)
    assert sum(counts.values()) == 50
    assert max(counts.values()) - min(counts.values()) <= 1


def test_tasks_being_shut_down_do_not_count():
    leaving = running_on(make_task("web", 1), "a").model_copy(
        update={"DesiredState": TaskState.SHUTDOWN}
    )
    nodes = nodeset(make_node("a"), make_node("b"), tasks=[leaving])
    result = plan(nodes, [make_task("web", 2)], NOW)
    assert placement(result) == {"a": 1}  # a is ahead of b by node ID, counts are level


# --- filters in the plan ---------------------------------------------------------------------


def test_drained_and_down_nodes_are_not_chosen():
    nodes = nodeset(
        make_node("a", availability=NodeAvailability.DRAIN),
        make_node("b", state=NodeState.DOWN),
        make_node("c"),
    )
    result = plan(nodes, [make_task("web", i) for i in (1, 2, 3)], NOW)
    assert placement(result) == {"c": 3}


def test_constraints_choose_the_nodes():
    nodes = nodeset(
        make_node("a", labels={"zone": "east"}),
        make_node("b", labels={"zone": "west"}),
        make_node("c", labels={"zone": "east"}),
    )
    tasks = [make_task("web", i, constraints=["node.labels.zone==east"]) for i in (1, 2, 3, 4)]
    assert placement(plan(nodes, tasks, NOW)) == {"a": 2, "c": 2}


def test_unsatisfiable_constraint_message():
    nodes = nodeset(make_node("a"), make_node("b"), make_node("c"))
    task = make_task("web", 1, constraints=["node.labels.zone==nowhere"])
    result = plan(nodes, [task], NOW)
    assert result.assigned == []
    (pending,) = result.unplaced
    assert pending.Status.State == TaskState.PENDING
    assert pending.Status.Err == (
        "no suitable node (scheduling constraints not satisfied on 3 nodes)"
    )
    assert pending.Status.Message == "pending task scheduling"
    assert pending.Status.Timestamp == NOW
    assert result.unplaced_changed == [pending]


def test_several_reasons_most_frequent_first():
    nodes = nodeset(
        make_node("a", availability=NodeAvailability.DRAIN),
        make_node("b", memory=1 * GB),
        make_node("c", memory=1 * GB),
        make_node("d", runtimes=["container"]),
    )
    result = plan(nodes, [make_task("web", 1, memory=2 * GB)], NOW)
    assert result.unplaced[0].Status.Err == (
        "no suitable node (insufficient resources on 2 nodes; "
        "1 node not available for new tasks; runtime process not offered on 1 node)"
    )


def test_container_task_waits_for_a_container_node():
    nodes = nodeset(make_node("a"), make_node("b"))
    result = plan(nodes, [make_task("web", 1, runtime=None)], NOW)
    assert result.unplaced[0].Status.Err == (
        "no suitable node (runtime container not offered on 2 nodes)"
    )


def test_no_nodes_at_all():
    result = plan(nodeset(), [make_task("web", 1)], NOW)
    assert result.unplaced[0].Status.Err == "no suitable node"


def test_resources_run_out_part_way():
    nodes = nodeset(make_node("a", memory=4 * GB), make_node("b", memory=2 * GB))
    tasks = [make_task("web", i, memory=2 * GB) for i in range(1, 6)]
    result = plan(nodes, tasks, NOW)
    assert placement(result) == {"a": 2, "b": 1}
    assert [t.Slot for t in result.unplaced] == [4, 5]
    assert {t.Status.Err for t in result.unplaced} == {
        "no suitable node (insufficient resources on 2 nodes)"
    }


def test_reservations_of_existing_tasks_count():
    hog = running_on(make_task("db", 1, memory=7 * GB), "a")
    nodes = nodeset(make_node("a", memory=8 * GB), make_node("b", memory=8 * GB), tasks=[hog])
    tasks = [make_task("web", i, memory=2 * GB) for i in (1, 2, 3)]
    assert placement(plan(nodes, tasks, NOW)) == {"b": 3}


def test_host_ports_one_task_per_node():
    nodes = nodeset(make_node("a"), make_node("b"))
    tasks = [make_task("web", i, host_ports=[8080]) for i in (1, 2, 3)]
    result = plan(nodes, tasks, NOW)
    assert placement(result) == {"a": 1, "b": 1}
    assert [t.Status.Err for t in result.unplaced] == [
        "no suitable node (host-mode port already in use on 2 nodes)"
    ]


def test_host_port_held_by_another_service():
    other = running_on(make_task("other", 1, host_ports=[8080]), "a")
    nodes = nodeset(make_node("a"), make_node("b"), tasks=[other])
    result = plan(nodes, [make_task("web", 1, host_ports=[8080])], NOW)
    assert placement(result) == {"b": 1}


def test_ingress_ports_do_not_limit_placement():
    nodes = nodeset(make_node("a"))
    tasks = [make_task("web", i, ingress_ports=[8080]) for i in (1, 2)]
    assert placement(plan(nodes, tasks, NOW)) == {"a": 2}


def test_platform_placement():
    nodes = nodeset(make_node("a", arch="aarch64"), make_node("b", arch="x86_64"))
    result = plan(nodes, [make_task("web", 1, platforms=[("arm64", "linux")])], NOW)
    assert placement(result) == {"a": 1}
    result = plan(nodes, [make_task("web", 2, platforms=[("ppc64le", "linux")])], NOW)
    assert result.unplaced[0].Status.Err == "no suitable node (unsupported platform on 2 nodes)"


def test_max_replicas_per_node():
    nodes = nodeset(make_node("a"), make_node("b"))
    tasks = [make_task("web", i, max_replicas=1) for i in (1, 2, 3)]
    result = plan(nodes, tasks, NOW)
    assert placement(result) == {"a": 1, "b": 1}
    assert result.unplaced[0].Status.Err == "no suitable node (max replicas per node limit exceed)"


def test_unchanged_err_is_not_rewritten():
    nodes = nodeset(make_node("a"))
    task = make_task(
        "web",
        1,
        constraints=["node.role==manager"],
        err="no suitable node (scheduling constraints not satisfied on 1 node)",
    )
    result = plan(nodes, [task], NOW)
    assert result.unplaced == [task]
    assert result.unplaced_changed == []
    assert result.writes == []


def test_tasks_not_meant_to_run_are_skipped():
    nodes = nodeset(make_node("a"))
    tasks = [
        make_task("web", 1, desired=TaskState.SHUTDOWN),
        make_task("web", 2, desired=TaskState.REMOVE),
        make_task("web", 3, state=TaskState.NEW),
        make_task("web", 4, desired=TaskState.READY),
    ]
    result = plan(nodes, tasks, NOW)
    assert [t.Slot for t in result.assigned] == [4]
    assert result.unplaced == []


def test_distinct_specs_of_one_service_are_placed_separately():
    nodes = nodeset(make_node("a", labels={"x": "1"}), make_node("b"))
    tasks = [
        make_task("web", 1, constraints=["node.labels.x==1"]),
        make_task("web", 2),
        make_task("web", 3),
    ]
    result = plan(nodes, tasks, NOW)
    by_slot = {t.Slot: t.NodeID for t in result.assigned}
    assert by_slot[1] == "a"
    assert sorted([by_slot[2], by_slot[3]]) == ["a", "b"]


def test_plan_records_placements_in_the_node_set():
    nodes = nodeset(make_node("a"))
    plan(nodes, [make_task("web", 1), make_task("web", 2)], NOW)
    info = nodes.get("a")
    assert isinstance(info, NodeInfo)
    assert info.active_total == 2 and info.service_count("web") == 2


# --- preassigned tasks (global services) -----------------------------------------------------


def test_preassigned_task_confirmed_on_its_node():
    nodes = nodeset(make_node("a"), make_node("b"))
    result = plan(nodes, [make_task("glob", None, node_id="b")], NOW)
    (new,) = result.assigned
    assert new.NodeID == "b"
    assert new.Status.Message == PREASSIGNED_MESSAGE
    assert new.Status.State == TaskState.ASSIGNED


def test_preassigned_task_that_does_not_fit_says_why():
    nodes = nodeset(make_node("a", memory=1 * GB))
    result = plan(nodes, [make_task("glob", None, node_id="a", memory=2 * GB)], NOW)
    assert result.assigned == []
    assert result.unplaced[0].Status.Err == "insufficient resources on 1 node"


def test_preassigned_task_on_unknown_node_waits_silently():
    result = plan(nodeset(make_node("a")), [make_task("glob", None, node_id="zz")], NOW)
    assert result.assigned == [] and result.writes == []
    assert len(result.unplaced) == 1


def test_preassigned_tasks_go_first():
    nodes = nodeset(make_node("a", memory=2 * GB))
    tasks = [
        make_task("web", 1, memory=2 * GB),
        make_task("glob", None, node_id="a", memory=2 * GB),
    ]
    result = plan(nodes, tasks, NOW)
    assert [t.ServiceID for t in result.assigned] == ["glob"]


# --- spread preferences ----------------------------------------------------------------------


def test_spread_over_a_label_before_nodes():
    nodes = nodeset(
        make_node("a1", labels={"zone": "a"}),
        make_node("a2", labels={"zone": "a"}),
        make_node("a3", labels={"zone": "a"}),
        make_node("b1", labels={"zone": "b"}),
    )
    tasks = [make_task("web", i, preferences=[spread("zone")]) for i in range(1, 5)]
    result = plan(nodes, tasks, NOW)
    zones = Counter(t.NodeID[0] for t in result.assigned)
    assert zones == {"a": 2, "b": 2}
    assert placement(result)["b1"] == 2


def test_spread_counts_existing_tasks_and_unlabelled_nodes():
    existing = [running_on(make_task("web", i), "a1") for i in (1, 2)]
    nodes = nodeset(
        make_node("a1", labels={"zone": "a"}),
        make_node("b1", labels={"zone": "b"}),
        make_node("x"),
        tasks=existing,
    )
    tasks = [make_task("web", i, preferences=[spread("zone")]) for i in (3, 4, 5, 6)]
    result = plan(nodes, tasks, NOW)
    # zone a already has 2: b and the unlabelled branch get 2 each
    assert placement(result) == {"b1": 2, "x": 2}


def test_spread_skips_full_branches():
    nodes = nodeset(
        make_node("a1", labels={"zone": "a"}, memory=2 * GB),
        make_node("b1", labels={"zone": "b"}, memory=8 * GB),
    )
    tasks = [make_task("web", i, memory=2 * GB, preferences=[spread("zone")]) for i in range(1, 5)]
    result = plan(nodes, tasks, NOW)
    assert placement(result) == {"a1": 1, "b1": 3}


def test_nested_spread():
    nodes = nodeset(
        *(
            make_node(f"{dc}{rack}{i}", labels={"dc": dc, "rack": rack})
            for dc in "xy"
            for rack in "pq"
            for i in (1, 2)
        )
    )
    tasks = [make_task("web", i, preferences=[spread("dc"), spread("rack")]) for i in range(1, 9)]
    counts = placement(plan(nodes, tasks, NOW))
    assert len(counts) == 8 and set(counts.values()) == {1}


# --- custom pipeline -------------------------------------------------------------------------


def test_pipeline_can_be_chosen():
    # Only readiness and resources: a node without the runtime is fine.
    pipeline = Pipeline([ReadyFilter(), ResourceFilter()])
    nodes = nodeset(make_node("a", runtimes=[]))
    assert placement(plan(nodes, [make_task("web", 1)], NOW, pipeline)) == {"a": 1}


def test_tasks_placed_in_one_pass_share_a_status_and_leave_their_stored_versions_alone():
    # One status made per pass is shared by the tasks it places (stored objects are never
    # changed in place); the tasks they were copied from keep theirs.
    tasks = [make_task("web", i) for i in (1, 2, 3)]
    before = [t.Status for t in tasks]
    result = plan(nodeset(make_node("a"), make_node("b")), tasks, NOW)
    statuses = {id(t.Status) for t in result.assigned}
    assert len(result.assigned) == 3 and len(statuses) == 1
    assert [t.Status for t in tasks] == before
    assert all(t.Status.State == TaskState.PENDING and t.NodeID is None for t in tasks)


def test_placing_a_task_counts_it_as_adding_it_does():
    from shoal.manager.scheduler.nodeinfo import NodeInfo, task_host_ports, task_reservations

    placed, added = NodeInfo(make_node("a")), NodeInfo(make_node("a"))
    tasks = [
        make_task("web", 1, cpus=1, memory=GB, host_ports=[80]),
        make_task("web", 2, cpus=1, memory=GB, host_ports=[80]),
        make_task("db", 1, memory=2 * GB),
    ]
    for t in tasks:
        placed.place(t, task_reservations(t), task_host_ports(t))
        added.add_task(t)
    placed.place(tasks[0], task_reservations(tasks[0]), task_host_ports(tasks[0]))  # again
    fields = ("active_by_service", "active_total", "host_ports", "memory_free", "nano_cpus_free")
    assert {f: getattr(placed, f) for f in fields} == {f: getattr(added, f) for f in fields}
    assert placed.tasks == added.tasks
    assert placed.active_total == 3 and placed.host_ports == {("tcp", 80): 2}
