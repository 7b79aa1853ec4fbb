"""Properties of the planner over random clusters and batches."""

import datetime as dt
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.api.types import NodeAvailability, NodeState
from shoal.manager.scheduler import NodeSet, Pipeline, plan
from shoal.manager.scheduler.nodeinfo import task_host_ports
from tests.unit.scheduler.factories import GB, make_node, make_task

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

nodes_st = st.lists(
    st.tuples(
        st.booleans(),  # ready
        st.integers(0, 6),  # memory GB
        st.sampled_from(["a", "b", ""]),  # zone label
    ),
    min_size=0,
    max_size=8,
)
groups_st = st.lists(
    st.tuples(
        st.sampled_from(["web", "db", "cache"]),
        st.integers(1, 12),  # how many tasks
        st.integers(0, 3),  # memory GB each
        st.sampled_from([None, "a", "b"]),  # zone constraint
        st.sampled_from([None, 8080]),  # host port
        st.sampled_from([None, 1, 2]),  # max replicas
    ),
    min_size=1,
    max_size=4,
)


def build(nodes_spec, groups_spec):
    nodes = [
        make_node(
            f"n{i}",
            state=NodeState.READY if ready else NodeState.DOWN,
            memory=mem * GB,
            labels={"zone": zone} if zone else {},
        )
        for i, (ready, mem, zone) in enumerate(nodes_spec)
    ]
    tasks = []
    for svc, count, mem, zone, port, max_replicas in groups_spec:
        for slot in range(1, count + 1):
            tasks.append(
                make_task(
                    svc,
                    slot,
                    memory=mem * GB,
                    constraints=[f"node.labels.zone=={zone}"] if zone else None,
                    host_ports=[port] if port else None,
                    max_replicas=max_replicas,
                )
            )
    return nodes, tasks


@settings(max_examples=300, deadline=None)
@given(nodes_spec=nodes_st, groups_spec=groups_st)
def test_plan_respects_every_filter(nodes_spec, groups_spec):
    nodes, tasks = build(nodes_spec, groups_spec)
    result = plan(NodeSet.build(nodes, []), tasks, NOW)

    assert len(result.assigned) + len(result.unplaced) == len(tasks)
    assert {t.ID for t in result.assigned}.isdisjoint({t.ID for t in result.unplaced})
    # replay the decisions on a fresh node set: each must pass the filters when made
    check = NodeSet.build(nodes, [])
    pipeline = Pipeline()
    for t in result.assigned:
        info = check.get(t.NodeID)
        assert info is not None
        pipeline.set_task(t)
        assert pipeline.first_failure(info) is None, (t.Slot, t.ServiceID, t.NodeID)
        info.add_task(t)
    for info in check:
        assert info.memory_free >= 0
        assert info.node.Status.State == NodeState.READY or not info.tasks
        ports = Counter(p for t in info.tasks.values() for p in task_host_ports(t))
        assert all(n == 1 for n in ports.values())
    for t in result.unplaced:
        assert t.Status.Err is not None and t.Status.Err.startswith("no suitable node")


@settings(max_examples=200, deadline=None)
@given(n_nodes=st.integers(1, 12), n_tasks=st.integers(0, 60))
def test_even_spread_on_equal_nodes(n_nodes, n_tasks):
    nodes = [make_node(f"n{i:02d}") for i in range(n_nodes)]
    result = plan(NodeSet.build(nodes, []), [make_task("web", i + 1) for i in range(n_tasks)], NOW)
    counts = Counter(t.NodeID for t in result.assigned)
    full = [counts.get(n.ID, 0) for n in nodes]
    assert sum(full) == n_tasks
    assert max(full) - min(full) <= 1


@settings(max_examples=100, deadline=None)
@given(zones=st.lists(st.sampled_from("abc"), min_size=1, max_size=9), n_tasks=st.integers(0, 30))
def test_spread_preference_balances_zones(zones, n_tasks):
    nodes = [make_node(f"n{i}", labels={"zone": z}) for i, z in enumerate(zones)]
    tasks = [
        make_task("web", i + 1, preferences=[{"Spread": {"SpreadDescriptor": "node.labels.zone"}}])
        for i in range(n_tasks)
    ]
    result = plan(NodeSet.build(nodes, []), tasks, NOW)
    zone_of = {n.ID: n.Spec.Labels["zone"] for n in nodes}
    per_zone = Counter(zone_of[t.NodeID] for t in result.assigned)
    full = [per_zone.get(z, 0) for z in set(zones)]
    assert sum(full) == n_tasks
    assert max(full) - min(full) <= 1


def test_drained_nodes_never_used():
    nodes = [make_node("a", availability=NodeAvailability.DRAIN), make_node("b")]
    result = plan(NodeSet.build(nodes, []), [make_task("web", i) for i in range(1, 6)], NOW)
    assert {t.NodeID for t in result.assigned} == {"b"}
