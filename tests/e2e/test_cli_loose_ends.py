"""The CLI's loose ends with real daemons, on one cluster for the module: Ctrl-C while the CLI
follows a converge ("Operation continuing in background.", exit 0, the change goes on, as
Docker's CLI); service ps PORTS as Docker shows them; shell completion of names."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import WHOAMI
from tests.e2e.harness import LocalCluster, local_cluster, wait_for
from tests.e2e.test_routing_mesh import free_on_all

pytestmark = pytest.mark.e2e
DOCKER = shutil.which("docker")


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """1 manager and 2 workers, shared by this module's tests (each uses names of its own)."""
    root = Path(tempfile.mkdtemp(prefix="shoal-e2e-", dir="/tmp"))
    try:
        with local_cluster(root, workers=2, init_args=("--dispatcher-heartbeat", "1s")) as c:
            yield c
    finally:
        shutil.rmtree(root, ignore_errors=True)


SLEEP = ["sh", "-c", "sleep 1000"]


def follow_then_interrupt(
    node_socket: str, *args: str, until: str = "overall progress:"
) -> tuple[int, list[str], str]:
    """Run a converge without -d, wait until it draws a line starting with ``until``, send
    SIGINT; its exit status, every line of its output and its stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "shoal", "-H", f"unix://{node_socket}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, f"the CLI ended before drawing progress: {proc.communicate()}"
        lines.append(line.rstrip("\n"))
        if line.startswith(until):
            break
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    return proc.returncode, lines + rest.splitlines(), err


def test_ctrl_c_leaves_the_change_running(cluster: LocalCluster):
    m = cluster.manager
    sock = str(m.socket)
    # Held pending by a constraint no node meets yet: the converge cannot finish by itself.
    status, lines, err = follow_then_interrupt(
        sock,
        "service",
        "create",
        "--runtime",
        "process",
        "--name",
        "held",
        "--constraint",
        "node.labels.go==yes",
        *SLEEP,
    )
    service_id = lines[0]
    assert (status, err) == (0, ""), (lines, err)
    assert lines[-2:] == [
        "Operation continuing in background.",
        f"Use `shoal service ps {service_id}` to check progress.",
    ]
    # The service stays, and runs once a node meets its constraint.
    m.cli("node", "update", "--label-add", "go=yes", "worker1")
    wait_for(lambda: len(cluster.running_tasks("held")) == 1, what="held running")

    # Scale, interrupted, goes on too (the new replicas wait for a second labelled node).
    status, lines, err = follow_then_interrupt(sock, "service", "scale", "held=2")
    assert (status, err) == (0, "")
    assert lines[0] == "held scaled to 2"
    assert lines[-1] == f"Use `shoal service ps {service_id}` to check progress."
    m.cli("node", "update", "--label-add", "go=yes", "worker2")
    wait_for(lambda: len(cluster.running_tasks("held")) == 2, what="2 held running")

    # Interrupted once converged, while it only waits to see the tasks stay up: Docker says
    # nothing more.
    create = ["service", "create", "--runtime", "process", "--name", "calm"]
    status, lines, err = follow_then_interrupt(
        sock, *create, "--update-monitor", "60s", *SLEEP, until="verify: Waiting"
    )
    assert (status, err) == (0, "")
    assert lines[-1].startswith("verify: Waiting")


def ports_column(ps_output: str) -> list[str]:
    header, *rows = ps_output.splitlines()
    at = header.index("PORTS")
    return [row[at:].strip() for row in rows]


def test_service_ps_shows_host_mode_ports_only(cluster: LocalCluster):
    """As Docker 20.10: an ingress port shows nothing in service ps PORTS, a host-mode one
    ``*:PUBLISHED->TARGET/tcp``; the host port the task got for the mesh is in its JSON."""
    m = cluster.manager
    hosts = [n.host for n in cluster.nodes]
    ingress, host_mode = free_on_all(hosts), free_on_all(hosts)
    # whoami answers on $PORT: the host port of target 80 (the mesh's), in $PORT_80
    serve = f"PORT=$PORT_80 exec {sys.executable} {WHOAMI}"
    m.process_service(
        *("--name", "ported", "--env", "WHOAMI={{.Service.Name}}.{{.Task.Slot}}"),
        *("-p", f"{ingress}:80", "-p", f"mode=host,target=81,published={host_mode}"),
        *("sh", "-c", serve),
    )
    wait_for(lambda: len(cluster.running_tasks("ported")) == 1, what="ported running")
    ps = m.cli("service", "ps", "ported").stdout
    assert ports_column(ps) == [f"*:{host_mode}->81/tcp"]
    if DOCKER is not None:
        env = {**os.environ, "DOCKER_HOST": f"unix://{m.socket}"}
        docker_ps = subprocess.run(
            [DOCKER, "service", "ps", "ported"], capture_output=True, text=True, env=env
        )
        assert ports_column(docker_ps.stdout) == [f"*:{host_mode}->81/tcp"], docker_ps.stderr
    [task] = cluster.running_tasks("ported")
    assert [p["PublishedPort"] for p in task["Status"]["PortStatus"]["Ports"]] == [host_mode]
    [mesh] = task["Shoal"]["RoutingMeshPorts"]
    assert mesh["TargetPort"] == 80 and mesh["PublishedPort"] not in (ingress, host_mode)
    # The routing mesh still reaches the task through that port.
    node = m.get(f"/nodes/{task['NodeID']}")
    url = f"http://{node['Status']['Addr']}:{mesh['PublishedPort']}/"
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.read().decode().startswith("ported.1")
    wait_for(lambda: _answers(m.host, ingress), what="the mesh answering the ingress port")


def _answers(host: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=5) as resp:
            return resp.read().decode().startswith("ported.1")
    except OSError:
        return False


def test_completion_offers_names_from_the_daemon(cluster: LocalCluster):
    m = cluster.manager
    m.process_service("--name", "completed-svc", *SLEEP)

    def complete(*words: str) -> list[str]:
        line = ["shoal", "-H", f"unix://{m.socket}", *words]
        env = {
            **os.environ,
            "_SHOAL_COMPLETE": "bash_complete",
            "COMP_WORDS": " ".join(line),
            "COMP_CWORD": str(len(line) - 1),
        }
        done = subprocess.run(
            [sys.executable, "-m", "shoal"], capture_output=True, text=True, env=env, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return [item.split(",", 1)[1] for item in done.stdout.split()]

    assert "completed-svc" in complete("service", "ps", "")
    assert complete("service", "rm", "completed-") == ["completed-svc"]
    assert complete("node", "inspect", "") == ["manager1", "worker1", "worker2"]
    assert complete("network", "inspect", "ing") == ["ingress"]
    assert complete("service", "ps", "--no") == ["--no-resolve", "--no-trunc"]
