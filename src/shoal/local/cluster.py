"""Starting, joining and stopping the daemons of a local cluster."""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from shoal import paths
from shoal.client import APIError, Client, ConnectError

START_TIMEOUT = 30.0
# The managers' web dashboards listen here where the port is free on all their addresses.
DASHBOARD_PORT = 9377
DATA_PATH_PORT = 4789  # the first node's; the others count up from it


@dataclass
class LocalNode:
    name: str
    host: str
    port: int
    root: Path
    # The nodes share one host: each needs its own UDP port for overlay (VXLAN) traffic.
    data_path_port: int = 4789
    # Where a manager serves the web dashboard (None: a worker, which has none).
    dashboard_port: int | None = None

    @property
    def dashboard_url(self) -> str | None:
        return f"http://{self.host}:{self.dashboard_port}/" if self.dashboard_port else None

    @property
    def socket(self) -> Path:
        return self.root / "shoal.sock"

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.root / "daemon.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "daemon.log"


def default_dir() -> Path:
    return paths.default_state_dir() / "local"


def node_names(managers: int, workers: int) -> list[str]:
    return [f"manager{i + 1}" for i in range(managers)] + [f"worker{i + 1}" for i in range(workers)]


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def choose_port(
    hosts: list[str], preferred: int = paths.DEFAULT_PORT, avoid: tuple[int, ...] = ()
) -> int:
    """Swarm's port 2377 (or another ``preferred``) if every node address has it free (a
    Docker swarm on this machine may hold it on all addresses), else one free port that all
    of them have."""
    if preferred not in avoid and all(_bindable(h, preferred) for h in hosts):
        return preferred
    for _ in range(100):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        if port not in avoid and all(_bindable(h, port) for h in hosts):
            return port
    raise RuntimeError("no free port common to the local cluster's addresses")


def plan(root: Path, managers: int, workers: int) -> list[LocalNode]:
    names = node_names(managers, workers)
    hosts = [f"127.0.0.{i + 1}" for i in range(len(names))]
    port = choose_port(hosts)
    dashboard = choose_port(hosts[:managers], DASHBOARD_PORT, avoid=(port,))
    return [
        LocalNode(
            n,
            h,
            port,
            root / n,
            data_path_port=DATA_PATH_PORT + i,
            dashboard_port=dashboard if i < managers else None,
        )
        for i, (n, h) in enumerate(zip(names, hosts, strict=True))
    ]


def start_daemon(node: LocalNode, runtimes: list[str]) -> None:
    node.root.mkdir(parents=True, exist_ok=True)
    args = [
        sys.executable,
        "-m",
        "shoal",
        "daemon",
        "--state-dir",
        str(node.root / "state"),
        "--socket",
        str(node.socket),
        "--listen-addr",
        node.addr,
        "--hostname",
        node.name,
        "--data-path-port",
        str(node.data_path_port),
    ]
    for runtime in runtimes:
        args += ["--runtime", runtime]
    if node.dashboard_port:
        args += ["--dashboard-addr", f"{node.host}:{node.dashboard_port}"]
    with open(node.log_file, "ab") as log:
        proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # the cluster outlives the command that started it
        )
    node.pid_file.write_text(str(proc.pid))


async def wait_ready(node: LocalNode) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            api = Client(f"unix://{node.socket}")
            try:
                await api.request("GET", "/_ping")
                return
            finally:
                await api.close()
        except (APIError, ConnectError):
            if time.monotonic() > deadline:
                tail = node.log_file.read_text()[-2000:] if node.log_file.exists() else ""
                raise RuntimeError(f"{node.name} did not start:\n{tail}") from None
            await asyncio.sleep(0.1)


async def form_swarm(nodes: list[LocalNode], managers: int) -> None:
    await asyncio.gather(*(wait_ready(n) for n in nodes))
    first = Client(f"unix://{nodes[0].socket}")
    try:
        await first.post(
            "/swarm/init", {"ListenAddr": nodes[0].addr, "AdvertiseAddr": nodes[0].host}
        )
        tokens = (await first.get("/swarm"))["JoinTokens"]
    finally:
        await first.close()
    for i, node in enumerate(nodes[1:], start=1):
        api = Client(f"unix://{node.socket}")
        try:
            token = tokens["Manager"] if i < managers else tokens["Worker"]
            await api.post(
                "/swarm/join",
                {
                    "ListenAddr": node.addr,
                    "AdvertiseAddr": node.host,
                    "RemoteAddrs": [nodes[0].addr],
                    "JoinToken": token,
                },
            )
        finally:
            await api.close()


def running_pids(root: Path) -> list[int]:
    pids = []
    for pid_file in sorted(root.glob("*/daemon.pid")):
        try:
            pid = int(pid_file.read_text())
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError, PermissionError):
            continue
        pids.append(pid)
    return pids


async def leave_all(root: Path) -> None:
    """Have every node leave (workers first), so each stops and removes its tasks."""
    socks = sorted(root.glob("*/shoal.sock"), key=lambda p: not p.parent.name.startswith("worker"))
    for sock in socks:
        api = Client(f"unix://{sock}")
        try:
            await api.post("/swarm/leave", force="1")
        except (APIError, ConnectError):
            pass  # not running, or not in a swarm any more
        finally:
            await api.close()


def stop_all(root: Path, timeout: float = 30.0) -> int:
    """SIGTERM every daemon of the cluster, then SIGKILL what is left; returns how many."""
    pids = running_pids(root)
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running_pids(root):
        time.sleep(0.1)
    for pid in running_pids(root):
        os.kill(pid, signal.SIGKILL)
    return len(pids)


def remove(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
