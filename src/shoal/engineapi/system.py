"""/_ping, /version and /info."""

import os
import platform
from typing import TYPE_CHECKING, Any

import psutil
from aiohttp import web

import shoal
from shoal.api.types import NodeRole
from shoal.engineapi.responses import DAEMON, json_response
from shoal.engineapi.version import API_VERSION, MIN_API_VERSION

if TYPE_CHECKING:
    from shoal.daemon.node import NodeDaemon


def _swarm_header(daemon: "NodeDaemon") -> str:
    state = daemon.local_node_state
    if state != "active":
        return state
    return "active/manager" if daemon.is_manager else "active/worker"


def ping_headers(daemon: "NodeDaemon") -> dict[str, str]:
    return {
        "API-Version": API_VERSION,
        "Builder-Version": "1",
        "Docker-Experimental": "false",
        "OSType": "linux",
        "Swarm": _swarm_header(daemon),
        "Cache-Control": "no-cache, no-store, must-revalidate",
        "Pragma": "no-cache",
    }


async def ping(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    body = "" if request.method == "HEAD" else "OK"
    return web.Response(text=body, content_type="text/plain", headers=ping_headers(daemon))


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


async def version(request: web.Request) -> web.Response:
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


def swarm_info(daemon: "NodeDaemon") -> dict[str, Any]:
    state = daemon.state
    info: dict[str, Any] = {
        "NodeID": "",
        "NodeAddr": "",
        "LocalNodeState": daemon.local_node_state,
        "ControlAvailable": False,
        "Error": daemon.error,
        "RemoteManagers": None,
    }
    if state is None:
        return info
    info["NodeID"] = state.NodeID
    info["NodeAddr"] = state.AdvertiseAddr.rsplit(":", 1)[0].strip("[]")
    info["RemoteManagers"] = [{"NodeID": "", "Addr": addr} for addr in state.RemoteManagers]
    if daemon.manager is not None:
        view = daemon.manager.store.view()
        nodes = view.nodes()
        managers = [n for n in nodes if n.Role == NodeRole.MANAGER]
        info["ControlAvailable"] = True
        info["RemoteManagers"] = [
            {"NodeID": n.ID, "Addr": n.ManagerStatus.Addr}
            for n in managers
            if n.ManagerStatus is not None
        ]
        info["Nodes"] = len(nodes)
        info["Managers"] = len(managers)
        cluster = view.cluster()
        if cluster is not None:
            info["Cluster"] = cluster.to_api()
    return info


async def info(request: web.Request) -> web.Response:
    daemon: NodeDaemon = request.app[DAEMON]
    cfg = daemon.config
    runtimes = {name: {"path": name} for name in cfg.runtimes}
    return json_response(
        {
            "ID": daemon.state.NodeID if daemon.state else "",
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
            "SystemTime": daemon.clock.now().isoformat().replace("+00:00", "Z"),
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
            "Swarm": swarm_info(daemon),
            "LiveRestoreEnabled": True,
            "Isolation": "",
            "InitBinary": "",
            "SecurityOptions": [],
            "Warnings": None,
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
