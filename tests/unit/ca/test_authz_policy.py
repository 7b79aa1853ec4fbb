"""Which roles may call which RPC: every method of every service is covered by the policy,
and the managers-only ones refuse workers and joiners."""

import pytest

from shoal.rpc import shoal_pb2
from shoal.rpc.authz import JOINING, MANAGER, WORKER, allowed_roles


def all_methods() -> list[str]:
    return [
        f"/{service.full_name}/{method.name}"
        for service in shoal_pb2.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ]


@pytest.mark.parametrize("method", all_methods())
def test_every_method_admits_someone_and_managers(method: str) -> None:
    # A method left out of the policy would refuse everyone: a new service must say who.
    assert MANAGER in allowed_roles(method)


@pytest.mark.parametrize(
    "method",
    [
        m
        for m in all_methods()
        if m.split("/")[1] in ("shoal.v1.Control", "shoal.v1.Raft", "shoal.v1.Logs")
    ],
)
def test_control_raft_and_log_reads_are_for_managers_only(method: str) -> None:
    assert allowed_roles(method) == frozenset({MANAGER})


@pytest.mark.parametrize("method", all_methods())
def test_a_joining_node_reaches_nothing_but_the_ca(method: str) -> None:
    service = method.split("/")[1]
    assert (JOINING in allowed_roles(method)) == (service == "shoal.v1.NodeCA")


def test_workers_reach_their_session_and_log_publishing() -> None:
    assert WORKER in allowed_roles("/shoal.v1.Dispatcher/Session")
    assert WORKER in allowed_roles("/shoal.v1.LogBroker/PublishLogs")
    assert allowed_roles("/shoal.v1.Unknown/Thing") == frozenset()
