"""Bodies checked against Go structs as encoding/json does (errors as Docker 20.10 sent them)."""

import pytest

from shoal.engineapi.go_fields import (
    CONFIG_SPEC,
    INIT_REQUEST,
    JOIN_REQUEST,
    NETWORK_CREATE,
    SECRET_SPEC,
    decode_struct,
)
from shoal.engineapi.responses import read_json
from shoal.errors import InvalidArgument


def test_fields_match_in_any_case_and_unknown_ones_stay():
    body = {"name": "s", "DATA": "eHg=", "driver": {"nAmE": "x"}, "Extra": 1}
    assert decode_struct(body, SECRET_SPEC) == {
        "Name": "s",
        "Data": "eHg=",
        "Driver": {"Name": "x"},
        "Extra": 1,
    }


@pytest.mark.parametrize(
    ("body", "struct", "message"),
    [
        ([], SECRET_SPEC, "json: cannot unmarshal array into Go value of type swarm.SecretSpec"),
        (
            {"Name": True},
            SECRET_SPEC,
            "json: cannot unmarshal bool into Go struct field SecretSpec.Name of type string",
        ),
        (
            {"Templating": {"Options": {"a": True}}},
            SECRET_SPEC,
            "json: cannot unmarshal bool into Go struct field Driver.Templating.Options of type "
            "string",
        ),
        (
            {"Labels": "x"},
            CONFIG_SPEC,
            "json: cannot unmarshal string into Go struct field ConfigSpec.Labels of type "
            "map[string]string",
        ),
        ({"Data": "!!"}, CONFIG_SPEC, "illegal base64 data at input byte 0"),
    ],
)
def test_type_errors_in_gos_words(body, struct, message):
    with pytest.raises(InvalidArgument) as err:
        decode_struct(body, struct)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("body", "struct", "expected"),
    [
        (
            {"listenaddr": "0.0.0.0:2377", "SPEC": {"Raft": {}}, "forceNewCluster": False},
            INIT_REQUEST,
            {"ListenAddr": "0.0.0.0:2377", "Spec": {"Raft": {}}, "ForceNewCluster": False},
        ),
        (
            {"remoteaddrs": ["10.0.0.1:2377"], "jointoken": "SWMTKN-1-x"},
            JOIN_REQUEST,
            {"RemoteAddrs": ["10.0.0.1:2377"], "JoinToken": "SWMTKN-1-x"},
        ),
        (
            {"name": "n", "driver": "overlay", "ipam": {"config": [{"subnet": "10.9.0.0/24"}]}},
            NETWORK_CREATE,
            {"Name": "n", "Driver": "overlay", "IPAM": {"Config": [{"Subnet": "10.9.0.0/24"}]}},
        ),
    ],
)
def test_requests_in_any_case(body, struct, expected):
    assert decode_struct(body, struct) == expected


@pytest.mark.parametrize(
    ("body", "struct", "message"),
    [
        (
            {"ForceNewCluster": "yes"},
            INIT_REQUEST,
            "json: cannot unmarshal string into Go struct field InitRequest.ForceNewCluster of "
            "type bool",
        ),
        (
            {"RemoteAddrs": "10.0.0.1"},
            JOIN_REQUEST,
            "json: cannot unmarshal string into Go struct field JoinRequest.RemoteAddrs of type "
            "[]string",
        ),
        (
            {"IPAM": {"Config": ["10.0.0.0/24"]}},
            NETWORK_CREATE,
            "json: cannot unmarshal string into Go struct field IPAM.IPAM.Config of type "
            "network.IPAMConfig",
        ),
    ],
)
def test_request_type_errors_in_gos_words(body, struct, message):
    with pytest.raises(InvalidArgument) as err:
        decode_struct(body, struct)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"Labels": null, "Name": "x"}', {"Name": "x"}),
        (b'{"Spec": {"Labels": null, "Mode": {"global": {}}}}', {"Spec": {"Mode": {"global": {}}}}),
        (b'{"Args": [null, "a"]}', {"Args": [None, "a"]}),
        (b"", {}),
    ],
)
async def test_null_is_absent_in_every_body(raw, expected):
    class _Body:
        async def read(self) -> bytes:
            return raw

    assert await read_json(_Body()) == expected  # type: ignore[arg-type]
