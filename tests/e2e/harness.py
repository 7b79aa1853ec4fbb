"""Real shoal daemons on this machine for end-to-end tests: each node its own process,
state dir, unix socket and loopback address (127.0.0.1, 127.0.0.2...), driven through the
real CLI and the HTTP API."""

import asyncio
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from shoal.daemon.overlay import overlay_prefix
from shoal.network.overlay import NodeNames, sweep

T = TypeVar("T")

WAIT_TIMEOUT = float(os.environ.get("SHOAL_E2E_TIMEOUT", "60"))


def wait_for(
    check: Callable[[], T], timeout: float = WAIT_TIMEOUT, interval: float = 0.1, what: str = ""
) -> T:
    """Poll until ``check`` returns something truthy; the timeout only guards against a hang."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as err:  # the condition may not be checkable yet
            last_error = err
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what or check}; last error: {last_error}")


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


@dataclass
class APIResponse:
    status: int
    body: Any


def unix_api(
    socket_path: str, method: str, path: str, body: Any = None, timeout: float = 30
) -> APIResponse:
    """One API call on a connection of its own to the unix socket ``socket_path``: its status,
    and its body decoded from JSON (as text if it is not JSON)."""
    conn = UnixHTTPConnection(socket_path, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        conn.request(method, path, body=payload, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            data = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            data = raw.decode()
        return APIResponse(resp.status, data)
    finally:
        conn.close()


@dataclass
class Node:
    name: str
    host: str
    root: Path
    port: int = 0
    proc: subprocess.Popen | None = None
    extra_args: list[str] = field(default_factory=list)
    # Put before the daemon's command line, e.g. ["nsenter", "--net=/run/netns/NAME"] to run
    # the node in a network namespace of its own (its address then lives only there).
    wrap: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # set in the daemon's environment

    @property
    def socket(self) -> Path:
        return self.root / "shoal.sock"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.root / "daemon.log"

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def spawn(self) -> None:
        """Start the daemon without waiting for it (several start at once; see
        ``wait_ready``)."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port(self.host)
        log = open(self.log_file, "ab")
        self.proc = subprocess.Popen(
            [
                *self.wrap,
                sys.executable,
                "-m",
                "shoal",
                "daemon",
                "--state-dir",
                str(self.state_dir),
                "--socket",
                str(self.socket),
                "--listen-addr",
                self.addr,
                "--hostname",
                self.name,
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **self.env} if self.env else None,
        )
        log.close()

    def wait_ready(self) -> None:
        wait_for(self._pings, what=f"{self.name} API")

    def _pings(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited: {self.log_file.read_text()[-2000:]}")
        return self.api("GET", "/_ping").status == 200

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: the daemon gets no chance to clean up (its tasks' processes survive)."""
        self.stop(signal.SIGKILL)

    def api(self, method: str, path: str, body: Any = None, timeout: float = 30) -> APIResponse:
        return unix_api(str(self.socket), method, path, body, timeout)

    def get(self, path: str, timeout: float = 30) -> Any:
        resp = self.api("GET", path, timeout=timeout)
        if resp.status >= 400:
            raise RuntimeError(f"GET {path}: {resp.status} {resp.body}")
        return resp.body

    def cli(
        self, *args: str, check: bool = True, env: dict | None = None
    ) -> subprocess.CompletedProcess:
        """Run ``shoal -H unix://<this node> ARGS``: the real CLI, as a user would."""
        result = subprocess.run(
            [sys.executable, "-m", "shoal", "-H", f"unix://{self.socket}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **(env or {})},
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"shoal {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def process_service(self, *args: str) -> subprocess.CompletedProcess:
        """``shoal service create -d --runtime process ARGS`` (most e2e services are
        processes, so that the tests need no container engine)."""
        return self.cli("service", "create", "-d", "--runtime", "process", *args)


class LocalCluster:
    """Several daemons on loopback addresses of their own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.nodes: list[Node] = []

    def add(self, name: str, extra_args: list[str] | None = None, wait: bool = True) -> Node:
        """Start a node; ``wait=False`` returns once its daemon is spawned (call its
        ``wait_ready`` before using it), so that several start at once."""
        host = f"127.0.0.{len(self.nodes) + 1}"
        # One host for all: each node needs its own VXLAN port for overlay networks.
        port_args = ["--data-path-port", str(4789 + len(self.nodes))]
        node = Node(
            name=name,
            host=host,
            root=self.root / name,
            extra_args=[*port_args, *(extra_args or [])],
        )
        self.nodes.append(node)
        node.spawn()
        if wait:
            node.wait_ready()
        return node

    @property
    def manager(self) -> Node:
        return self.nodes[0]

    def init(self, *extra: str) -> str:
        out = self.manager.cli("swarm", "init", "--advertise-addr", self.manager.host, *extra)
        return out.stdout

    def join_manager(self, node: Node) -> None:
        """Join ``node`` as a manager and wait until every manager is reachable with one
        leader: a test's first write then does not race the election a new member can set
        off on a loaded machine ("lost leadership before the entry committed")."""
        token = self.join_token("Manager")
        node.cli("swarm", "join", "--token", token, self.manager.addr)
        wait_for(self._managers_settled, what="every manager reachable, one leader")

    def _managers_settled(self) -> bool:
        managers = [n.get("ManagerStatus") for n in self.manager.get("/nodes")]
        statuses = [m for m in managers if m is not None]
        leaders = sum(1 for m in statuses if m.get("Leader"))
        return leaders == 1 and all(m.get("Reachability") == "reachable" for m in statuses)

    def join_worker(self, node: Node) -> None:
        node.cli("swarm", "join", "--token", self.join_token("Worker"), self.manager.addr)

    def join_token(self, role: str) -> str:
        """The swarm's join token for ``role`` ("Worker" or "Manager"), read from the API:
        what ``swarm join-token -q`` prints, without starting a CLI process per join."""
        return str(self.manager.get("/swarm")["JoinTokens"][role])

    def node_id(self, node: Node) -> str:
        return node.get("/info")["Swarm"]["NodeID"]

    def tasks(self, service: str) -> list[dict]:
        filters = quote(json.dumps({"service": [service]}))
        return self.manager.get(f"/tasks?filters={filters}")

    def running_tasks(self, service: str) -> list[dict]:
        return [
            t
            for t in self.tasks(service)
            if t["Status"]["State"] == "running" and t["DesiredState"] == "running"
        ]

    def close(self) -> None:
        node_ids = [i for i in (node_id_of(n) for n in self.nodes) if i]
        prefixes = [overlay_prefix(i) for i in node_ids]
        for node in reversed(self.nodes):
            with contextlib.suppress(Exception):
                if node.proc is not None and node.proc.poll() is None and node.socket.exists():
                    node.api("POST", "/swarm/leave?force=1")
            node.stop()
        kill_tasks_under(self.root)
        remove_file_roots(node_ids)
        remove_engine_leftovers(node_ids, prefixes)
        sweep_overlays(prefixes)


def node_id_of(node: Node) -> str | None:
    """The node's ID while it is in a swarm (from its state, so even once it is dead)."""
    try:
        state = json.loads((node.state_dir / "swarm" / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return str(state["NodeID"])


def remove_file_roots(node_ids: list[str]) -> None:
    """The tmpfs a node killed by a test kept its tasks' secrets on (a node that stopped
    unmounted its own), and its /dev/shm directory."""
    for node_id in node_ids:
        root = Path("/run/shoal") / node_id
        files = root / "files"
        if os.path.ismount(files):
            subprocess.run(["umount", "-l", str(files)], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(Path("/dev/shm") / f"shoal-{node_id}", ignore_errors=True)


def remove_engine_leftovers(node_ids: list[str], prefixes: list[str]) -> None:
    """Containers and Docker networks of the cluster's nodes on the machine's engine that a
    node killed by a test could not remove."""
    docker = shutil.which("docker")
    if docker is None or not node_ids:
        return

    def run(*args: str) -> str:
        r = subprocess.run([docker, *args], capture_output=True, text=True, timeout=60)
        return r.stdout

    for node_id in node_ids:
        ids = run("ps", "-aq", "--filter", f"label=com.docker.swarm.node.id={node_id}").split()
        if ids:
            run("rm", "-f", *ids)
    for prefix in prefixes:
        nets = run("network", "ls", "-q", "--filter", f"name=shoal_{prefix}_").split()
        if nets:
            run("network", "rm", *nets)


def sweep_overlays(prefixes: list[str]) -> None:
    """A node that left swept its overlay networks away itself; one that was killed left
    them: remove what carries its prefix (namespaces; links and tables of this namespace)."""
    if not prefixes or os.geteuid() != 0:
        return

    async def sweep_all() -> None:
        for prefix in prefixes:
            await sweep(NodeNames(prefix))

    with contextlib.suppress(Exception):
        asyncio.run(sweep_all())


def kill_tasks_under(root: Path) -> None:
    """Task processes outlive their daemon by design; a test that killed a node leaves them
    running. Kill every process started from this cluster's directories: named in its
    command line (shims) or working in one (the tasks, in their own sessions)."""
    import psutil

    prefix = str(root)
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        with contextlib.suppress(psutil.Error):
            ours = any(prefix in arg for arg in proc.info["cmdline"] or [])
            ours = ours or (proc.info["cwd"] or "").startswith(prefix)
            if ours:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.kill()


@contextlib.contextmanager
def local_cluster(
    root: Path, workers: int = 2, init_args: tuple[str, ...] = ()
) -> Iterator[LocalCluster]:
    cluster = LocalCluster(root)
    try:
        # The daemons start at once (each spends a second or two importing), then join.
        manager = cluster.add("manager1", wait=False)
        others = [cluster.add(f"worker{i + 1}", wait=False) for i in range(workers)]
        manager.wait_ready()
        cluster.init(*init_args)
        for node in others:
            node.wait_ready()
            cluster.join_worker(node)
        yield cluster
    finally:
        cluster.close()


def relative_times_masked(result: tuple[str, str, int]) -> tuple[str, str, int]:
    """A CLI's result with "N seconds ago" in it, the number masked and the columns' padding
    collapsed (a number one digit longer widens its column): for comparing two runs that a
    second may have passed between."""
    out, err, code = result
    out = re.sub(r"\d+ (second|minute|hour)s? ago", r"N \1s ago", out)
    out = re.sub(r" {2,}", "  ", out)
    return out, err, code
