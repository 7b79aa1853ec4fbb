from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.api.types import NodeAvailability, NodeState, TaskState
from shoal.manager.scheduler import (
    ConstraintFilter,
    NodeInfo,
    Pipeline,
    ReadyFilter,
    ResourceFilter,
    default_filters,
    no_suitable_node,
)
from tests.unit.scheduler.factories import GB, make_node, make_task


def test_explanation_counts_first_failure_only():
    # b is drained AND short of memory: it counts as not available (readiness comes first);
    # with one failure each, the pipeline's order decides
    nodes = [
        NodeInfo(make_node("a", memory=1 * GB)),
        NodeInfo(make_node("b", memory=1 * GB, availability=NodeAvailability.DRAIN)),
    ]
    p = Pipeline()
    p.set_task(make_task(memory=2 * GB))
    assert p.explain(nodes) == (
        "1 node not available for new tasks; insufficient resources on 1 node"
    )


def test_explanation_most_failures_first_ties_in_pipeline_order():
    nodes = [
        NodeInfo(make_node("a", state=NodeState.DOWN)),
        NodeInfo(make_node("b", labels={"zone": "x"})),
        NodeInfo(make_node("c", labels={"zone": "x"})),
        NodeInfo(make_node("d", memory=1 * GB, labels={"zone": "y"})),
    ]
    p = Pipeline()
    p.set_task(make_task(memory=2 * GB, constraints=["node.labels.zone==y"]))
    assert p.explain(nodes) == (
        "scheduling constraints not satisfied on 2 nodes; "
        "1 node not available for new tasks; insufficient resources on 1 node"
    )


def test_explanation_empty_when_a_node_passes():
    p = Pipeline()
    p.set_task(make_task())
    assert p.explain([NodeInfo(make_node("a"))]) == ""


def test_no_suitable_node_wording():
    assert no_suitable_node("") == "no suitable node"
    assert (
        no_suitable_node("insufficient resources on 2 nodes")
        == "no suitable node (insufficient resources on 2 nodes)"
    )


def test_resource_failure_before_constraint_failure_survives_caching():
    # The static verdict (constraint fails) is cached; a dynamic filter earlier in the
    # pipeline (resources) must still be reported first.
    info = NodeInfo(make_node("a", memory=1 * GB))
    p = Pipeline()
    p.set_task(make_task(memory=2 * GB, constraints=["node.labels.x==1"]))
    for _ in range(2):
        f = p.first_failure(info)
        assert isinstance(f, ResourceFilter)


def test_static_verdict_forgotten_when_node_changes():
    node = make_node("a")
    info = NodeInfo(node)
    p = Pipeline()
    p.set_task(make_task(constraints=["node.labels.x==1"]))
    assert isinstance(p.first_failure(info), ConstraintFilter)
    changed = node.clone()
    changed.Spec.Labels["x"] = "1"
    info.set_node(changed)
    assert p.first_failure(info) is None


def test_verdicts_kept_apart_per_kind_of_task():
    info = NodeInfo(make_node("a", labels={"x": "1"}))
    p = Pipeline()
    p.set_task(make_task(constraints=["node.labels.x==1"]))
    assert p.first_failure(info) is None
    p.set_task(make_task(constraints=["node.labels.x==2"]))
    assert isinstance(p.first_failure(info), ConstraintFilter)
    p.set_task(make_task(constraints=["node.labels.x==1"]))
    assert p.first_failure(info) is None
    other = Pipeline([ReadyFilter()])
    other.set_task(make_task(constraints=["node.labels.x==2"]))
    assert other.first_failure(info) is None


# --- the cached pipeline answers as a plain one would ---------------------------------------

node_st = st.builds(
    lambda i, ready, active, mem, zone, runtimes: make_node(
        f"n{i}",
        state=NodeState.READY if ready else NodeState.DOWN,
        availability=NodeAvailability.ACTIVE if active else NodeAvailability.DRAIN,
        memory=mem * GB,
        labels={"zone": zone} if zone else {},
        runtimes=runtimes,
    ),
    st.integers(0, 1000),
    st.booleans(),
    st.booleans(),
    st.integers(0, 4),
    st.sampled_from(["", "a", "b"]),
    st.sampled_from([["process"], ["container"], []]),
)
task_st = st.builds(
    lambda mem, zone, runtime, ports: make_task(
        memory=mem * GB,
        constraints=[f"node.labels.zone=={zone}"] if zone else None,
        runtime=runtime,
        host_ports=ports,
    ),
    st.integers(0, 3),
    st.sampled_from(["", "a", "b"]),
    st.sampled_from(["process", None]),
    st.sampled_from([None, [80], [80, 443]]),
)


def plain_first_failure(task, info):
    for f in default_filters():
        if f.set_task(task) and not f.check(info):
            return type(f)
    return None


@settings(max_examples=200, deadline=None)
@given(nodes=st.lists(node_st, min_size=1, max_size=5), tasks=st.lists(task_st, max_size=6))
def test_cached_pipeline_matches_plain_checks(nodes, tasks):
    infos = [NodeInfo(n) for n in nodes]
    p = Pipeline()
    for round_ in range(2):
        for task in tasks:
            p.set_task(task)
            for info in infos:
                got = p.first_failure(info)
                assert (type(got) if got else None) == plain_first_failure(task, info)
        # place a task on every node between rounds: only dynamic filters change
        for info in infos:
            running = make_task(memory=1 * GB, host_ports=[80]).model_copy(
                update={"NodeID": info.id}
            )
            running.Status.State = TaskState.RUNNING
            info.add_task(running)
        del round_
