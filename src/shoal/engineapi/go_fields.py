"""Checking a JSON body against the Go struct Docker's daemon decodes it into, with
encoding/json's errors: "json: cannot unmarshal number into Go struct field
SecretSpec.Name of type string". Go matches field names in any case; the body comes back
with Go's spelling of each field it knows.

A struct is described as {field: type}, where a type is "string", "bool", "number" (any of
Go's integer types), "[]string", "map[string]string", "[]uint8" (base64 text, checked as Go
decodes it), a nested struct (a dict, with its Go name under ``GO_NAME``) or a list of one
(``[struct]``). A type not listed here is taken as it comes.

Bodies that become one of our models (service, node and swarm specs) need no table: the base
``Model`` matches field names as Go does. These tables are for the bodies that do not (secret
and config specs, whose Go errors we mirror, and requests such as ``swarm init``).
"""

from typing import Any

from shoal.errors import InvalidArgument
from shoal.golang import GoError
from shoal.golang.base64 import decode_std

GO_NAME = "__go_name__"

DRIVER = {GO_NAME: "swarm.Driver", "Name": "string", "Options": "map[string]string"}
SECRET_SPEC = {
    GO_NAME: "swarm.SecretSpec",
    "Name": "string",
    "Labels": "map[string]string",
    "Data": "[]uint8",
    "Driver": DRIVER,
    "Templating": DRIVER,
}
CONFIG_SPEC = {
    GO_NAME: "swarm.ConfigSpec",
    "Name": "string",
    "Labels": "map[string]string",
    "Data": "[]uint8",
    "Templating": DRIVER,
}

# The requests of POST /swarm/init and /swarm/join: the daemon reads their fields by name.
# (Spec is decoded as a SwarmSpec model.)
INIT_REQUEST = {
    GO_NAME: "swarm.InitRequest",
    "ListenAddr": "string",
    "AdvertiseAddr": "string",
    "DataPathAddr": "string",
    "DataPathPort": "uint32",
    "ForceNewCluster": "bool",
    "Spec": "swarm.Spec",
    "AutoLockManagers": "bool",
    "Availability": "string",
    "DefaultAddrPool": "[]string",
    "SubnetSize": "uint32",
}
JOIN_REQUEST = {
    GO_NAME: "swarm.JoinRequest",
    "ListenAddr": "string",
    "AdvertiseAddr": "string",
    "DataPathAddr": "string",
    "RemoteAddrs": "[]string",
    "JoinToken": "string",
    "Availability": "string",
}
IPAM_CONFIG = {
    GO_NAME: "network.IPAMConfig",
    "Subnet": "string",
    "IPRange": "string",
    "Gateway": "string",
    "AuxiliaryAddresses": "map[string]string",
}
IPAM = {
    GO_NAME: "network.IPAM",
    "Driver": "string",
    "Options": "map[string]string",
    "Config": [IPAM_CONFIG],
}
NETWORK_CREATE = {
    GO_NAME: "types.NetworkCreateRequest",
    "Name": "string",
    "CheckDuplicate": "bool",
    "Driver": "string",
    "Scope": "string",
    "EnableIPv6": "bool",
    "IPAM": IPAM,
    "Internal": "bool",
    "Attachable": "bool",
    "Ingress": "bool",
    "ConfigOnly": "bool",
    "ConfigFrom": "network.ConfigReference",
    "Options": "map[string]string",
    "Labels": "map[string]string",
}

_INTEGERS = frozenset({"int", "int64", "uint32", "uint64", "number"})


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_name(go_type: Any) -> str:
    if isinstance(go_type, list):
        return "[]" + _type_name(go_type[0])
    return go_type[GO_NAME] if isinstance(go_type, dict) else go_type


def _unmarshal_error(value: Any, struct: str, field: str, go_type: Any) -> InvalidArgument:
    # Go names the innermost struct and the field's whole path from the outermost one.
    return InvalidArgument(
        f"json: cannot unmarshal {_json_type(value)} into Go struct field {struct}.{field} "
        f"of type {_type_name(go_type)}"
    )


def _short(go_type: dict[str, Any]) -> str:
    return str(go_type[GO_NAME]).rpartition(".")[2]


def decode_struct(body: Any, struct: dict[str, Any]) -> dict[str, Any]:
    """``body`` (parsed JSON, nulls dropped) as Go would accept it into ``struct``: its
    fields renamed to Go's spelling, unknown ones kept as they are. Go's error otherwise."""
    if not isinstance(body, dict):
        raise InvalidArgument(
            f"json: cannot unmarshal {_json_type(body)} into Go value of type {struct[GO_NAME]}"
        )
    return _fields(body, struct, "")


def _fields(body: dict[str, Any], struct: dict[str, Any], prefix: str) -> dict[str, Any]:
    known = {name.lower(): name for name in struct if name != GO_NAME}
    out: dict[str, Any] = {}
    for key, value in body.items():
        name = key if key in struct and key != GO_NAME else known.get(key.lower())
        if name is None:
            out[key] = value
            continue
        out[name] = _value(value, struct[name], _short(struct), prefix + name)
    return out


def _value(value: Any, go_type: Any, struct: str, field: str) -> Any:
    if isinstance(go_type, dict):
        if not isinstance(value, dict):
            raise _unmarshal_error(value, struct, field, go_type)
        return _fields(value, go_type, field + ".")
    if isinstance(go_type, list):
        if not isinstance(value, list):
            raise _unmarshal_error(value, struct, field, go_type)
        return [_value(item, go_type[0], struct, field) for item in value]
    if go_type == "string":
        if not isinstance(value, str):
            raise _unmarshal_error(value, struct, field, go_type)
    elif go_type == "bool":
        if not isinstance(value, bool):
            raise _unmarshal_error(value, struct, field, go_type)
    elif go_type in _INTEGERS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _unmarshal_error(value, struct, field, go_type)
    elif go_type == "[]string":
        if not isinstance(value, list):
            raise _unmarshal_error(value, struct, field, go_type)
        for item in value:
            if not isinstance(item, str):
                raise _unmarshal_error(item, struct, field, "string")
    elif go_type == "map[string]string":
        if not isinstance(value, dict):
            raise _unmarshal_error(value, struct, field, go_type)
        for item in value.values():
            if not isinstance(item, str):
                raise _unmarshal_error(item, struct, field, "string")
    elif go_type == "[]uint8":
        if not isinstance(value, str):
            raise _unmarshal_error(value, struct, field, go_type)
        try:
            decode_std(value)
        except GoError as err:
            raise InvalidArgument(str(err)) from None
    return value
