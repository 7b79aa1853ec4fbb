"""/networks: the swarm's networks as Docker's daemon shows them (its NetworkResource shape,
field for field and in its order), created, removed and pruned through the control API, and
listed with Docker's filters."""

import hashlib
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from shoal.api.base import rfc3339nano
from shoal.api.objects import Network, Node, Task
from shoal.engineapi.backend import Backend
from shoal.engineapi.engine_proxy import ENGINE
from shoal.engineapi.go_fields import NETWORK_CREATE, decode_struct
from shoal.engineapi.responses import BACKEND, json_response, query_bool, read_json
from shoal.errors import NOT_IN_SWARM, InvalidArgument, NotFound, ShoalError, Unavailable
from shoal.manager.allocator.addresses import address_of
from shoal.manager.allocator.networks import OVERLAY
from shoal.manager.controlapi.filters import Filters
from shoal.manager.controlapi.networks import NetworkUsage
from shoal.network.overlay.docker_driver import NETWORK_ID_LABEL

# The first API version whose network JSON carries EnableIPv4.
ENABLE_IPV4_SINCE = (1, 47)
LIST_FILTERS = {"dangling", "driver", "id", "label", "name", "scope", "type"}
# Docker's predefined networks (runconfig.IsPreDefinedNetwork): "builtin", never dangling.
PREDEFINED = {"bridge", "host", "none", "default"}


def mac_of(address: str) -> str:
    """The MAC Docker gives an endpoint: 02:42 and the four bytes of its IPv4 address."""
    return "02:42:" + ":".join(f"{b:02x}" for b in address_of(address).packed)


def endpoint_id(task_id: str, network_id: str) -> str:
    """A stable 64-hex endpoint ID for a task on a network (Docker's are random; ours are
    derived so that every manager shows the same)."""
    return hashlib.sha256(f"{task_id}/{network_id}".encode()).hexdigest()


def _container_key(task: Task) -> str:
    status = task.Status.ContainerStatus
    return (status.ContainerID if status is not None else None) or task.ID


def network_resource(
    network: Network,
    usage: NetworkUsage | None,
    node_id: str,
    verbose: bool,
    api_version: tuple[int, int],
) -> dict[str, Any]:
    """A swarm network as Docker's daemon answers for it: the cluster's object, with what is
    on this node (Containers, Peers) once this node has tasks on it, and with ``verbose``
    every service and task on it (Services)."""
    spec = network.Spec
    configs = network.IPAMOptions.Configs if network.IPAMOptions else None
    ipam_config = []
    for c in configs or ():
        entry: dict[str, Any] = {"Subnet": c.Subnet}
        if c.Range:
            entry["IPRange"] = c.Range
        entry["Gateway"] = c.Gateway
        ipam_config.append(entry)
    local = [(t, n) for t, n in (usage.tasks if usage else ()) if t.NodeID == node_id]
    data: dict[str, Any] = {
        "Name": spec.Name,
        "Id": network.ID,
        "Created": rfc3339nano(network.CreatedAt),
        "Scope": "swarm",
        "Driver": (network.DriverState.Name if network.DriverState else "") or OVERLAY,
    }
    if api_version >= ENABLE_IPV4_SINCE:
        data["EnableIPv4"] = True
    data.update(
        {
            "EnableIPv6": bool(spec.IPv6Enabled),
            "IPAM": {"Driver": "default", "Options": None, "Config": ipam_config},
            "Internal": bool(spec.Internal),
            "Attachable": bool(spec.Attachable),
            "Ingress": bool(spec.Ingress),
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": False,
            "Containers": _containers(network, local) if local else None,
            "Options": dict((network.DriverState.Options if network.DriverState else None) or {}),
            "Labels": spec.Labels if spec.Labels is not None or not local else {},
        }
    )
    if local and usage is not None:
        data["Peers"] = _peers(usage)
    if verbose and local and usage is not None:
        data["Services"] = _services(network, usage)
    return data


def _containers(network: Network, local: list[tuple[Task, Node | None]]) -> dict[str, Any]:
    containers = {}
    for task, _node in local:
        address = task.address_on(network.ID)
        if address is None:
            continue
        containers[_container_key(task)] = {
            "Name": task.full_name,
            "EndpointID": endpoint_id(task.ID, network.ID),
            "MacAddress": mac_of(address),
            "IPv4Address": address,
            "IPv6Address": "",
        }
    return containers


def _peers(usage: NetworkUsage) -> list[dict[str, str]]:
    nodes = {n.ID: n for _t, n in usage.tasks if n is not None}
    return [
        {"Name": n.ID[:12], "IP": n.Status.Addr}
        for n in sorted(nodes.values(), key=lambda n: n.Status.Addr)
    ]


def _services(network: Network, usage: NetworkUsage) -> dict[str, Any]:
    services: dict[str, Any] = {}
    for index, svc in enumerate(usage.services):
        vip = next(
            (v.Addr for v in svc.Endpoint.VirtualIPs or () if v.NetworkID == network.ID), None
        )
        tasks = []
        for task, node in usage.tasks:
            address = task.address_on(network.ID)
            if task.ServiceID != svc.ID or address is None:
                continue
            tasks.append(
                {
                    "Name": task.full_name,
                    "EndpointID": endpoint_id(task.ID, network.ID),
                    "EndpointIP": str(address_of(address)),
                    "Info": {"Host IP": node.Status.Addr if node is not None else ""},
                }
            )
        services[svc.Spec.Name] = {
            "VIP": str(address_of(vip)) if vip else "<nil>",
            "Ports": [],
            "LocalLBIndex": 256 + index,
            "Tasks": tasks,
        }
    return services


def _api_version(request: web.Request) -> tuple[int, int]:
    text = request.match_info.get("api_version")
    if not text:
        return (99, 99)  # no version in the path: the newest
    major, _, minor = text[1:].partition(".")
    return int(major), int(minor)


def _manager(backend: Backend) -> bool:
    return backend.swarm_status().is_manager


# --- list ------------------------------------------------------------------------------------


def _selected(net: dict[str, Any], f: Filters) -> bool:
    if not f.match_exact("driver", net["Driver"]):
        return False
    if f.get("name") and not any(n in net["Name"] for n in f.get("name")):
        return False
    if not f.match_prefix("id", net["Id"]):
        return False
    if not f.match_labels("label", net["Labels"] or {}):
        return False
    if not f.match_exact("scope", net["Scope"]):
        return False
    for kind in f.get("type"):
        if kind not in ("custom", "builtin"):
            raise InvalidArgument(f"invalid filter: 'type'='{kind}'")
    builtin = net["Name"] in PREDEFINED and net["Scope"] == "local"
    if f.get("type") and ("builtin" if builtin else "custom") not in f.get("type"):
        return False
    for value in f.get("dangling"):
        if value not in ("true", "1", "false", "0"):
            raise InvalidArgument(
                'invalid value for filter \'dangling\', must be "true" (or "1"), '
                'or "false" (or "0")'
            )
    if f.get("dangling"):
        wanted = f.get("dangling")[0] in ("true", "1")
        dangling = not builtin and not net.get("Containers")
        if wanted != dangling:
            return False
    return True


def _resources(backend: Backend, verbose: bool, version: tuple[int, int]) -> list[dict[str, Any]]:
    control = backend.control()
    node_id = backend.swarm_status().node_id
    return [
        network_resource(n, control.network_usage(n.ID), node_id, verbose, version)
        for n in control.list_networks()
    ]


async def list_networks(request: web.Request) -> web.Response:
    backend = request.app[BACKEND]
    f = Filters.parse(request.query.get("filters"))
    f.validate(LIST_FILTERS)
    networks = await backend.local_networks()
    if _manager(backend):
        networks += _resources(backend, False, _api_version(request))
    return json_response([n for n in networks if _selected(n, f)])


async def inspect(request: web.Request) -> web.StreamResponse:
    backend = request.app[BACKEND]
    ref = request.match_info["id"]
    network = _swarm_network(backend, ref)
    if network is None:
        # One of the node's own networks: its engine answers, as for dockerd.
        return await _local(request, lambda: NotFound(f"network {ref} not found"))
    control = backend.control()
    node_id = backend.swarm_status().node_id
    verbose = query_bool(request, "verbose")
    return json_response(
        network_resource(
            network, control.network_usage(network.ID), node_id, verbose, _api_version(request)
        )
    )


def _swarm_network(backend: Backend, ref: str) -> Network | None:
    """The swarm network ``ref`` names, or None (not a manager, or no such network)."""
    if not _manager(backend):
        return None
    try:
        return backend.control().get_network(ref)
    except NotFound:
        return None


async def _local(
    request: web.Request, without_engine: Callable[[], ShoalError], body: bytes | None = None
) -> web.StreamResponse:
    """The request passed to the node's engine; ``without_engine`` where the node has none."""
    proxy = request.app[ENGINE]
    if proxy.address is None:
        raise without_engine()
    return await proxy.forward(request, body)


# --- create, remove, prune -------------------------------------------------------------------


def network_spec(body: dict[str, Any]) -> dict[str, Any]:
    """Docker's NetworkCreateRequest as the swarm's NetworkSpec (what Docker's daemon does
    before it asks swarmkit). What shoal's overlay networks do not do is refused, rather
    than taken and ignored."""
    ipam = body.get("IPAM") or {}
    if (ipam.get("Driver") or "default") != "default":
        raise InvalidArgument(
            f'ipam driver "{ipam["Driver"]}" is not supported: the managers allocate every '
            "address of shoal's overlay networks (the default driver)"
        )
    if any(isinstance(c, dict) and c.get("AuxiliaryAddresses") for c in ipam.get("Config") or ()):
        raise InvalidArgument("auxiliary addresses (--aux-address) are not supported by shoal")
    if "encrypted" in (body.get("Options") or {}):
        raise InvalidArgument(
            "encrypted overlay networks (--opt encrypted) are not supported by shoal: its "
            "VXLAN traffic between nodes is not encrypted"
        )
    configs = [
        {
            "Subnet": c.get("Subnet") or None,
            "Range": c.get("IPRange") or None,
            "Gateway": c.get("Gateway") or None,
        }
        for c in ipam.get("Config") or ()
        if isinstance(c, dict)
    ]
    spec: dict[str, Any] = {
        "Name": body.get("Name", ""),
        "Labels": body.get("Labels") or None,
        "DriverConfiguration": {
            "Name": body.get("Driver") or "",
            "Options": body.get("Options") or None,
        },
        "IPv6Enabled": bool(body.get("EnableIPv6")),
        "Internal": bool(body.get("Internal")),
        "Attachable": bool(body.get("Attachable")),
        "Ingress": bool(body.get("Ingress")),
        "IPAMOptions": {
            "Driver": {
                "Name": (ipam.get("Driver") or "default"),
                "Options": ipam.get("Options") or None,
            },
            "Configs": configs or None,
        },
        "Scope": body.get("Scope") or "swarm",
    }
    return spec


async def create(request: web.Request) -> web.StreamResponse:
    backend = request.app[BACKEND]
    raw = await request.read()
    body = decode_struct(await read_json(request), NETWORK_CREATE)
    driver = body.get("Driver") or ""
    if driver != OVERLAY and body.get("Scope") != "swarm":
        # A local network (bridge, macvlan...): the engine's to create, as dockerd does.
        return await _local(
            request,
            lambda: InvalidArgument(
                f'driver "{driver or "bridge"}" is a local network driver of the Docker '
                "Engine, and this shoal node has none (shoal daemon --engine-host none); "
                "use --driver overlay for a swarm network"
            ),
            raw,
        )
    if not _manager(backend):
        # Docker 28's words for a swarm network asked of a node that is no manager.
        raise Unavailable(NOT_IN_SWARM)
    network = await backend.control().create_network(network_spec(body))
    return json_response({"Id": network.ID, "Warning": ""}, status=201)


async def remove(request: web.Request) -> web.StreamResponse:
    backend = request.app[BACKEND]
    ref = request.match_info["id"]
    network = _swarm_network(backend, ref)
    if network is None and request.app[ENGINE].address is not None:
        return await _local(request, lambda: NotFound(f"network {ref} not found"))
    await backend.control().remove_network(ref)
    return web.Response(status=204)


async def prune(request: web.Request) -> web.StreamResponse:
    backend = request.app[BACKEND]
    f = Filters.parse(request.query.get("filters"))
    deleted: list[str] = []
    proxy = request.app[ENGINE]
    if proxy.address is not None:
        # The engine's unused networks go too, as dockerd prunes both kinds; its refusal
        # (a bad filter) is the answer.
        answer = await proxy.forward(request, b"", _engine_prune_target(request))
        if answer.status != 200 or not isinstance(answer, web.Response):
            return answer
        deleted += json.loads(answer.body or b"{}").get("NetworksDeleted") or []  # type: ignore[arg-type]
    if _manager(backend):
        deleted += await backend.control().prune_networks(f.to_json())
    else:
        f.validate({"label", "label!", "until"})
    return json_response({"NetworksDeleted": deleted or None})


def _engine_prune_target(request: web.Request) -> str:
    """The prune asked of the engine: the client's filters, and never the Docker networks
    that stand for shoal's overlay networks (unused as they may be between tasks)."""
    try:
        filters = json.loads(request.query.get("filters") or "{}")
    except json.JSONDecodeError:
        return request.raw_path  # the engine says what is wrong with them
    if not isinstance(filters, dict):
        return request.raw_path
    excluded = filters.get("label!") or {}
    if isinstance(excluded, list):
        excluded = dict.fromkeys(excluded, True)
    if not isinstance(excluded, dict):
        return request.raw_path
    filters["label!"] = {**excluded, NETWORK_ID_LABEL: True}
    query = {**request.query, "filters": json.dumps(filters, separators=(",", ":"))}
    return f"{request.path}?{urlencode(query)}"
