"""Container tasks on overlay networks: a Docker network driver served by the node.

Why a driver (Docker's remote network driver protocol, libnetwork's v1 plugins) rather than
a container made without a network and plumbed from outside, as CNI plugins are: Docker
calls the driver while it starts the container, before the container's process runs, so
the task starts with its interfaces in place (plumbed from outside, it would start without
them and race us); and Docker goes on doing for the container what it does for any: its
docker_gwbridge for the way out (the driver gives no gateway, so Docker's gateway service
adds one, as for Swarm's overlay), resolv.conf pointing at its embedded DNS (127.0.0.11,
whose upstream the runtime sets to this node's resolver on the network), /etc/hosts. What
the task sees inside is what it sees under Swarm.

For each overlay network a container task on this node uses, the runtime makes a Docker
network on the node's engine with this driver (the node's own: several nodes may share an
engine) and no IPAM of Docker's (``null``): the address is the managers', passed in the
endpoint's driver options and handed back to Docker from CreateEndpoint. Join makes the veth
pair (NodeOverlay.container_endpoint) and names its outer end for Docker to move into the
container. What the driver knows of networks and endpoints is kept in a file, so a
restarted daemon still answers Docker about containers it started before.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from shoal.network.overlay.model import OverlayNetwork, mac_for_ip
from shoal.network.overlay.node import NodeOverlay

log = logging.getLogger(__name__)

PLUGIN_DIR = Path("/run/docker/plugins")
MEDIA_TYPE = "application/vnd.docker.plugins.v1.2+json"

# Options of the Docker network (docker network create -o), naming the overlay network.
NETWORK_OPTION = "com.shoal.network"
# Driver options of a container's endpoint on it: the task's address and ID.
ADDRESS_OPTION = "com.shoal.address"
TASK_OPTION = "com.shoal.task"
GENERIC = "com.docker.network.generic"


def plugin_name(prefix: str) -> str:
    return f"shoal-{prefix}"


def docker_network_name(prefix: str, network: OverlayNetwork) -> str:
    """The Docker network on the node's engine for an overlay network (per node: nodes may
    share an engine)."""
    return f"shoal_{prefix}_{network.name}"


# On the Docker networks that stand for overlay networks: which one (and that they are ours).
NETWORK_ID_LABEL = "com.shoal.network.id"


def docker_network_options(network: OverlayNetwork) -> dict[str, str]:
    return {NETWORK_OPTION: json.dumps(asdict(network), sort_keys=True)}


def endpoint_options(address: str, task_id: str) -> dict[str, str]:
    """The driver options of a task's endpoint on one of our Docker networks."""
    return {ADDRESS_OPTION: address, TASK_OPTION: task_id}


def docker_network_body(prefix: str, network: OverlayNetwork) -> dict[str, Any]:
    """``POST /networks/create`` for the Docker network of an overlay network on a node."""
    return {
        "Name": docker_network_name(prefix, network),
        "CheckDuplicate": True,  # engines before API 1.44 would make a second one otherwise
        "Driver": plugin_name(prefix),
        "IPAM": {"Driver": "null"},
        "Internal": network.internal,
        "Options": docker_network_options(network),
        "Labels": {NETWORK_ID_LABEL: network.id},
    }


@dataclass(frozen=True)
class _Endpoint:
    network: str  # the Docker network's ID
    address: str  # CIDR
    task: str


class DockerNetworkDriver:
    def __init__(
        self, overlay: NodeOverlay, state_file: Path, plugin_dir: Path = PLUGIN_DIR
    ) -> None:
        self.overlay = overlay
        self.name = plugin_name(overlay.names.prefix)
        self.socket = plugin_dir / f"{self.name}.sock"
        self._state_file = state_file
        self._networks: dict[str, OverlayNetwork] = {}  # Docker network ID -> ours
        self._endpoints: dict[str, _Endpoint] = {}  # Docker endpoint ID -> what it is
        self._runner: web.AppRunner | None = None
        self._save_lock = asyncio.Lock()
        # Held while a runtime makes the Docker networks of a task (tasks start together).
        self.networks_lock = asyncio.Lock()

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._load)
        app = web.Application()
        for method in (
            "Plugin.Activate",
            "NetworkDriver.GetCapabilities",
            "NetworkDriver.CreateNetwork",
            "NetworkDriver.DeleteNetwork",
            "NetworkDriver.CreateEndpoint",
            "NetworkDriver.EndpointOperInfo",
            "NetworkDriver.DeleteEndpoint",
            "NetworkDriver.Join",
            "NetworkDriver.Leave",
            "NetworkDriver.DiscoverNew",
            "NetworkDriver.DiscoverDelete",
            "NetworkDriver.ProgramExternalConnectivity",
            "NetworkDriver.RevokeExternalConnectivity",
        ):
            app.router.add_post(f"/{method}", self._handler(method))
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        if self.socket.exists() or self.socket.is_symlink():
            self.socket.unlink()
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.UnixSite(self._runner, str(self.socket)).start()
        os.chmod(self.socket, 0o600)
        log.info("docker network driver %s on %s", self.name, self.socket)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.socket.exists():
            self.socket.unlink()

    # --- state -------------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            data = json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return
        self._networks = {k: OverlayNetwork(**v) for k, v in data.get("Networks", {}).items()}
        self._endpoints = {k: _Endpoint(**v) for k, v in data.get("Endpoints", {}).items()}

    async def _save(self) -> None:
        # Off the event loop, as every read and write of the node's state is; one at a time,
        # each with what is known when its turn comes, so the newest is written last.
        async with self._save_lock:
            await asyncio.to_thread(self._write, self._snapshot())

    def _snapshot(self) -> dict[str, Any]:
        return {
            "Networks": {k: asdict(v) for k, v in self._networks.items()},
            "Endpoints": {k: asdict(v) for k, v in self._endpoints.items()},
        }

    def _write(self, data: dict[str, Any]) -> None:
        tmp = self._state_file.with_name(self._state_file.name + ".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self._state_file)

    # --- the protocol ------------------------------------------------------------------------

    def _handler(self, method: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        fn = getattr(self, "_" + method.split(".")[1].lower())

        async def handle(request: web.Request) -> web.Response:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw.strip() else {}
                answer = await fn(body)
            except Exception as err:  # Docker shows the driver's Err to the user
                log.exception("docker network driver: %s failed", method)
                answer = {"Err": str(err) or type(err).__name__}
            return web.Response(
                body=json.dumps(answer).encode(), headers={"Content-Type": MEDIA_TYPE}
            )

        return handle

    async def _activate(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"Implements": ["NetworkDriver"]}

    async def _getcapabilities(self, body: dict[str, Any]) -> dict[str, Any]:
        # Each node's engine has its own Docker network per overlay network.
        return {"Scope": "local", "ConnectivityScope": "global"}

    async def _createnetwork(self, body: dict[str, Any]) -> dict[str, Any]:
        options = (body.get("Options") or {}).get(GENERIC) or {}
        spec = options.get(NETWORK_OPTION)
        if not spec:
            raise ValueError(
                f"{self.name} networks are made by shoal for its overlay networks; "
                "create overlay networks with shoal network create -d overlay"
            )
        self._networks[body["NetworkID"]] = OverlayNetwork(**json.loads(spec))
        await self._save()
        return {}

    async def _deletenetwork(self, body: dict[str, Any]) -> dict[str, Any]:
        self._networks.pop(body.get("NetworkID", ""), None)
        await self._save()
        return {}

    async def _createendpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        network = self._network(body)
        options = body.get("Options") or {}
        address = options.get(ADDRESS_OPTION)
        if not address:
            raise ValueError(
                f"a container joins {network.name} only as a shoal task (no address given)"
            )
        cidr = network.address_cidr(address)
        self._endpoints[body["EndpointID"]] = _Endpoint(
            body["NetworkID"], cidr, str(options.get(TASK_OPTION, ""))
        )
        await self._save()
        # The address is ours (the managers'): Docker's IPAM for the network is null.
        answer: dict[str, Any] = {}
        given = body.get("Interface") or {}
        if not given.get("Address"):
            answer["Address"] = cidr
        if not given.get("MacAddress"):
            answer["MacAddress"] = mac_for_ip(cidr)
        return {"Interface": answer} if answer else {}

    async def _endpointoperinfo(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"Value": {}}

    async def _deleteendpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._endpoints.pop(body.get("EndpointID", ""), None)
        if endpoint is not None:
            network = self._networks.get(endpoint.network)
            if network is not None:
                await self.overlay.drop_container_endpoint(network.id, endpoint.address)
            await self._save()
        return {}

    async def _join(self, body: dict[str, Any]) -> dict[str, Any]:
        network = self._network(body)
        endpoint = self._endpoints.get(body.get("EndpointID", ""))
        if endpoint is None:
            raise ValueError(f"unknown endpoint {body.get('EndpointID')}")
        src = await self.overlay.container_endpoint(network, endpoint.address)
        # No gateway: Docker's gateway service gives the container docker_gwbridge for the
        # way out (none if the network is internal).
        return {
            "InterfaceName": {"SrcName": src, "DstPrefix": "eth"},
            "DisableGatewayService": network.internal,
        }

    async def _leave(self, body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._endpoints.get(body.get("EndpointID", ""))
        network = self._networks.get(endpoint.network) if endpoint is not None else None
        if endpoint is not None and network is not None:
            await self.overlay.drop_container_endpoint(network.id, endpoint.address)
        return {}

    async def _discovernew(self, body: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def _discoverdelete(self, body: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def _programexternalconnectivity(self, body: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def _revokeexternalconnectivity(self, body: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _network(self, body: dict[str, Any]) -> OverlayNetwork:
        network = self._networks.get(body.get("NetworkID", ""))
        if network is None:
            raise ValueError(f"network {body.get('NetworkID')} is not one of {self.name}'s")
        return network
