"""/_ping, /version and /info."""

import os
import platform
from typing import Any

import psutil
from aiohttp import web

import shoal
from shoal.engineapi.backend import Backend, SwarmStatus
from shoal.engineapi.responses import BACKEND, json_response
from shoal.engineapi.version import API_VERSION, MIN_API_VERSION


def _swarm_header(status: SwarmStatus) -> str:
    state = status.local_node_state
    if state != "active":
        return state
    return "active/manager" if status.is_manager else "active/worker"


def ping_headers(backend: Backend) -> dict[str, str]:
    return {
        "API-Version": API_VERSION,
        "Builder-Version": "1",
        "Docker-Experimental": "false",
        "OSType": "linux",
        "Swarm": _swarm_header(backend.swarm_status()),
        "Cache-Control": "no-cache, no-store, must-revalidate",
        "Pragma": "no-cache",
    }


async def ping(request: web.Request) -> web.Response:
    body = "" if request.method == "HEAD" else "OK"
    return web.Response(
        text=body, content_type="text/plain", headers=ping_headers(request.app[BACKEND])
    )


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
