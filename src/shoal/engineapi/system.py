"""/_ping, /version and /info."""

import os
import platform
from typing import Any

import psutil
from aiohttp import web

import shoal
from shoal.engineapi.api_versions import newest, version_key
from shoal.engineapi.backend import Backend, SwarmStatus
from shoal.engineapi.engine_proxy import ENGINE, unreachable_message
from shoal.engineapi.responses import BACKEND, json_response
from shoal.engineapi.version import API_VERSION, MIN_API_VERSION
from shoal.errors import Unavailable


def _swarm_header(status: SwarmStatus) -> str:
    state = status.local_node_state
    if state != "active":
        return state
    return "active/manager" if status.is_manager else "active/worker"


def ping_headers(backend: Backend, engine: dict[str, str] | None = None) -> dict[str, str]:
    """Docker's /_ping headers. With an engine, what it says of itself (its builder, whether
    it is experimental) and the API version both speak; the swarm part is shoal's."""
    headers = {
        "API-Version": newest(engine.get("Api-Version")) if engine else API_VERSION,
        "Docker-Experimental": (engine or {}).get("Docker-Experimental", "false"),
        "OSType": (engine or {}).get("Ostype", "linux"),
        "Swarm": _swarm_header(backend.swarm_status()),
        "Cache-Control": "no-cache, no-store, must-revalidate",
        "Pragma": "no-cache",
    }
    builder = (engine or {}).get("Builder-Version") if engine else "1"
    if builder:
        headers["Builder-Version"] = builder
    return headers


async def _engine(request: web.Request, path: str | None = None) -> Any:
    """The engine's /_ping headers (``path`` None) or JSON answer to a GET of ``path``; None
    without an engine or while it does not answer."""
    proxy = request.app[ENGINE]
    if proxy.address is None:
        return None
    try:
        return await proxy.ping() if path is None else await proxy.get_json(path)
    except Unavailable:
        return None


async def ping(request: web.Request) -> web.Response:
    body = "" if request.method == "HEAD" else "OK"
    engine = await _engine(request)
    return web.Response(
        text=body, content_type="text/plain", headers=ping_headers(request.app[BACKEND], engine)
    )


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


async def version(request: web.Request) -> web.Response:
    engine = await _engine(request, request.path)
    if isinstance(engine, dict):
        return json_response(_merged_version(engine))
    details = {
        "ApiVersion": API_VERSION,
        "Arch": _arch(),
        "BuildTime": "",
        "Experimental": "false",
        "GitCommit": "",
        "GoVersion": f"python{platform.python_version()}",
        "KernelVersion": platform.release(),
        "MinAPIVersion": MIN_API_VERSION,
        "Os": "linux",
    }
    return json_response(
        {
            "Platform": {"Name": "shoal"},
            "Components": [{"Name": "Engine", "Version": shoal.__version__, "Details": details}],
            "Version": shoal.__version__,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": details["GoVersion"],
            "Os": "linux",
            "Arch": _arch(),
            "KernelVersion": platform.release(),
            "BuildTime": "",
        }
    )


def _merged_version(engine: dict[str, Any]) -> dict[str, Any]:
    """The engine's /version, with the API versions this node speaks (both its own and the
    engine's) and shoal among its components (``docker version`` lists them)."""
    newest_version = newest(str(engine.get("ApiVersion") or ""))
    engine_min = str(engine.get("MinAPIVersion") or MIN_API_VERSION)
    oldest = max(engine_min, MIN_API_VERSION, key=version_key)
    merged = dict(engine)
    merged["ApiVersion"] = newest_version
    merged["MinAPIVersion"] = oldest
    components = []
    for component in engine.get("Components") or ():
        if isinstance(component, dict) and component.get("Name") == "Engine":
            details = dict(component.get("Details") or {})
            details["ApiVersion"] = newest_version
            details["MinAPIVersion"] = oldest
            component = {**component, "Details": details}
        components.append(component)
    components.append(
        {
            "Name": "shoal",
            "Version": shoal.__version__,
            "Details": {"ApiVersion": API_VERSION, "Python": platform.python_version()},
        }
    )
    merged["Components"] = components
    return merged


def swarm_info(status: SwarmStatus) -> dict[str, Any]:
    info: dict[str, Any] = {
        "NodeID": status.node_id,
        "NodeAddr": status.node_addr,
        "LocalNodeState": status.local_node_state,
        "ControlAvailable": status.is_manager,
        "Error": status.error,
        "RemoteManagers": None,
    }
    if status.remote_managers is not None:
        info["RemoteManagers"] = [
            {"NodeID": m.node_id, "Addr": m.addr} for m in status.remote_managers
        ]
    if status.nodes is not None:
        info["Nodes"] = status.nodes
    if status.managers is not None:
        info["Managers"] = status.managers
    if status.cluster is not None:
        info["Cluster"] = status.cluster.to_api()
    return info


async def info(request: web.Request) -> web.Response:
    backend = request.app[BACKEND]
    cfg = backend.settings
    status = backend.swarm_status()
    engine = await _engine(request, request.path)
    if isinstance(engine, dict):
        # Docker's daemon: the engine's facts, and the swarm as this node sees it. The node's
        # name and labels are shoal's (they are what `node inspect` shows of it).
        merged = dict(engine)
        merged["Name"] = cfg.hostname
        merged["Labels"] = [
            *(engine.get("Labels") or ()),
            *(f"{k}={v}" for k, v in sorted(cfg.labels.items())),
        ]
        merged["Swarm"] = swarm_info(status)
        return json_response(merged)
    proxy = request.app[ENGINE]
    warnings = None
    if proxy.address is not None:
        warnings = [f"WARNING: {unreachable_message(proxy.host)}"]
    runtimes = {name: {"path": name} for name in cfg.runtimes}
    return json_response(
        {
            "ID": status.node_id,
            "Containers": 0,
            "ContainersRunning": 0,
            "ContainersPaused": 0,
            "ContainersStopped": 0,
            "Images": 0,
            "Driver": "",
            "DriverStatus": None,
            "Plugins": {"Volume": None, "Network": None, "Authorization": None, "Log": None},
            "MemoryLimit": False,
            "SwapLimit": False,
            "NFd": 0,
            "NGoroutines": 0,
            "SystemTime": backend.clock.now().isoformat().replace("+00:00", "Z"),
            "LoggingDriver": "json-file",
            "NEventsListener": 0,
            "KernelVersion": platform.release(),
            "OperatingSystem": _os_name(),
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": platform.machine(),
            "IndexServerAddress": "",
            "NCPU": os.cpu_count() or 1,
            "MemTotal": psutil.virtual_memory().total,
            "DockerRootDir": str(cfg.state_dir),
            "Name": cfg.hostname,
            "Labels": [f"{k}={v}" for k, v in sorted(cfg.labels.items())],
            "ExperimentalBuild": False,
            "ServerVersion": shoal.__version__,
            "Runtimes": runtimes,
            "DefaultRuntime": cfg.runtimes[0] if cfg.runtimes else "",
            "Swarm": swarm_info(status),
            "LiveRestoreEnabled": True,
            "Isolation": "",
            "InitBinary": "",
            "SecurityOptions": [],
            "Warnings": warnings,
        }
    )


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()
