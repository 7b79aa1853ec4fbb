"""Request bodies read as Docker's daemon reads them (Go's encoding/json): a field's name
matches in any case; unknown fields stay as they came. (Nulls are
dropped where bodies are read: tests/unit/engineapi/test_go_fields.py.)"""

from typing import Any

import pytest

from shoal.api.objects import Service
from shoal.api.specs import NodeSpec, ServiceSpec, SwarmSpec
from shoal.api.types import NodeAvailability, NodeRole, UpdateOrder


def _global(spec: ServiceSpec) -> bool:
    return spec.Mode.is_global and spec.Mode.Replicated is None


@pytest.mark.parametrize(
    ("body", "check"),
    [
        # docker-py's ServiceMode("global") and ServiceMode("replicated", 2).
        ({"Mode": {"global": {}}}, _global),
        ({"mode": {"GLOBAL": {}}}, _global),
        (
            {"Mode": {"replicated": {"Replicas": 2}}},
            lambda s: s.Mode.Replicated is not None and s.Mode.Replicated.Replicas == 2,
        ),
        (
            {"Mode": {"Replicated": {"replicas": 3}}},
            lambda s: s.Mode.Replicated is not None and s.Mode.Replicated.Replicas == 3,
        ),
        (
            {"name": "web", "taskTemplate": {"containerSpec": {"image": "busybox"}}},
            lambda s: (
                s.Name == "web"
                and s.TaskTemplate.ContainerSpec is not None
                and s.TaskTemplate.ContainerSpec.Image == "busybox"
            ),
        ),
        (
            {"UpdateConfig": {"order": "start-first", "PARALLELISM": 2}},
            lambda s: (
                s.UpdateConfig is not None
                and s.UpdateConfig.Order == UpdateOrder.START_FIRST
                and s.UpdateConfig.Parallelism == 2
            ),
        ),
        (
            {"EndpointSpec": {"ports": [{"targetport": 80, "PublishedPort": 8080}]}},
            lambda s: (
                s.EndpointSpec is not None
                and s.EndpointSpec.Ports is not None
                and (s.EndpointSpec.Ports[0].TargetPort, s.EndpointSpec.Ports[0].PublishedPort)
                == (80, 8080)
            ),
        ),
        # Two keys that name one field: the later wins, as in Go.
        ({"name": "a", "Name": "b"}, lambda s: s.Name == "b"),
        ({"Name": "b", "NAME": "a"}, lambda s: s.Name == "a"),
        # Unknown fields are kept under the name they came with.
        ({"Name": "x", "Frobnicate": 1}, lambda s: s.model_extra == {"Frobnicate": 1}),
    ],
)
def test_service_spec_fields_in_any_case(body: dict[str, Any], check: Any) -> None:
    assert check(ServiceSpec.model_validate(body))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"availability": "drain", "role": "manager", "labels": {"a": "b"}},
            NodeSpec(Availability=NodeAvailability.DRAIN, Role=NodeRole.MANAGER, Labels={"a": "b"}),
        ),
        ({"NAME": "n1"}, NodeSpec(Name="n1")),
    ],
)
def test_node_spec_fields_in_any_case(body: dict[str, Any], expected: NodeSpec) -> None:
    assert NodeSpec.model_validate(body) == expected


def test_swarm_spec_fields_in_any_case() -> None:
    spec = SwarmSpec.model_validate(
        {"raft": {"snapshotInterval": 5000}, "CAConfig": {"nodecertexpiry": 3600 * 10**9}}
    )
    assert spec.Raft.SnapshotInterval == 5000
    assert spec.CAConfig.NodeCertExpiry == 3600 * 10**9


def test_our_own_objects_come_back_unchanged() -> None:
    svc = Service(ID="x", Spec=ServiceSpec(Name="web"))
    assert Service.model_validate(svc.model_dump()) == svc
    assert svc.clone().to_api() == svc.to_api()


def test_swarm_shows_its_address_pool_even_when_null_as_docker_does() -> None:
    from shoal.api.objects import Cluster

    shown = Cluster(ID="c").to_api()
    assert list(shown)[-4:] == [
        "RootRotationInProgress",
        "DefaultAddrPool",
        "SubnetSize",
        "DataPathPort",
    ]
    assert shown["DefaultAddrPool"] is None
    assert (shown["SubnetSize"], shown["DataPathPort"]) == (24, 4789)
    pooled = Cluster(ID="c", DefaultAddrPool=["10.20.0.0/16"], SubnetSize=26).to_api()
    assert (pooled["DefaultAddrPool"], pooled["SubnetSize"]) == (["10.20.0.0/16"], 26)


def test_a_float_is_written_as_go_writes_it() -> None:
    from shoal.api.specs import UpdateConfig

    assert UpdateConfig().model_dump(mode="json")["MaxFailureRatio"] == 0
    assert isinstance(UpdateConfig().model_dump(mode="json")["MaxFailureRatio"], int)
    assert UpdateConfig(MaxFailureRatio=0.25).model_dump(mode="json")["MaxFailureRatio"] == 0.25
