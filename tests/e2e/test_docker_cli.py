"""The real Docker CLI drives a shoal cluster, and shoal's CLI prints what it prints."""

import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.harness import LocalCluster, local_cluster, relative_times_masked, wait_for

DOCKER = shutil.which("docker")
pytestmark = pytest.mark.skipif(DOCKER is None, reason="no docker CLI on this machine")

COMMANDS = [
    ["node", "ls"],
    ["node", "ls", "-q"],
    ["node", "ls", "--format", "json"],
    ["node", "inspect", "--pretty", "self"],
    # (raw `node inspect` differs on purpose: shoal's node description also lists the
    # runtimes the node offers, which Docker's CLI drops when it decodes the node)
    ["node", "ps", "worker1"],
    ["service", "ls"],
    ["service", "ps", "web"],
    ["service", "ps", "--no-trunc", "web"],
    ["service", "ps", "-q", "web"],
    ["service", "inspect", "web"],
    ["service", "inspect", "--pretty", "web"],
    ["service", "inspect", "--format", "{{.Spec.Name}} {{json .Spec.Labels}}", "web"],
    ["swarm", "join-token", "worker"],
    ["service", "ps", "nosuch"],
    ["service", "inspect", "nosuch"],
    ["node", "inspect", "nosuch"],
    ["service", "rm", "nosuch"],
    ["service", "scale", "web=abc"],
    ["node", "update", "--availability", "bogus", "worker1"],
    ["service", "create", "--replicas", "abc", "busybox"],
    ["service", "create", "-d", "--network", "my-network", "busybox"],
    ["network", "ls", "-q"],
]


def run(argv: list[str], socket: str) -> tuple[str, str, int]:
    env = {**os.environ, "DOCKER_HOST": f"unix://{socket}", "DOCKER_CLI_HINTS": "false"}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    return result.stdout, result.stderr, result.returncode


def as_docker(text: str) -> str:
    return text.replace("shoal swarm join", "docker swarm join").replace("shoal ", "docker ")


@pytest.fixture(scope="module")
def swarm():
    """One cluster for every comparison, with a container service made by Docker's CLI and a
    process service made by shoal's."""
    root = Path(tempfile.mkdtemp(prefix="shoal-docker-", dir="/tmp"))
    with local_cluster(root, workers=2) as c:
        m = c.manager
        create = [DOCKER, "service", "create", "-d", "--name", "web", "--replicas", "2"]
        # Held pending by a constraint no node meets: a steady state both CLIs print alike
        # (run, its image missing from the engine, it is rejected and replaced every few
        # seconds, and `service ps` changes between the two CLIs' runs).
        held = ["--label", "tier=front", "--constraint", "node.labels.none==1"]
        run([*create, *held, "busybox", "sleep", "100"], str(m.socket))
        wait_for(
            lambda: (
                len(tasks := c.tasks("web")) == 2
                and all(t["Status"]["State"] == "pending" and t["Status"].get("Err") for t in tasks)
            ),
            what="web's tasks held pending",
        )
        m.process_service(
            "--name",
            "proc",
            "-p",
            "8080:80",
            "sleep",
            "1000",
        )
        wait_for(lambda: len(c.running_tasks("proc")) == 1, what="proc running")
        yield c
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("args", COMMANDS, ids="-".join)
def test_shoal_prints_what_docker_prints(swarm: LocalCluster, args):
    m = swarm.manager
    # Relative times may cross a second between the two runs: run both CLIs at once, a few
    # times, and only then accept a difference in those times alone.
    with ThreadPoolExecutor(max_workers=1) as pool:
        for _ in range(5):
            docker_run = pool.submit(run, [DOCKER, *args], str(m.socket))
            shoal = m.cli(*args, check=False)
            docker = docker_run.result()
            ours = (as_docker(shoal.stdout), as_docker(shoal.stderr), shoal.returncode)
            if ours == docker:
                return
            time.sleep(0.3)
    assert relative_times_masked(ours) == relative_times_masked(docker), (ours, docker)


def test_docker_cli_forms_a_swarm(short_tmp):
    cluster = LocalCluster(short_tmp)
    try:
        manager, worker = cluster.add("manager1"), cluster.add("worker1")
        out, err, status = run(
            [DOCKER, "swarm", "init", "--advertise-addr", manager.host], str(manager.socket)
        )
        assert status == 0, err
        assert out.startswith("Swarm initialized: current node (")
        token, _, _ = run([DOCKER, "swarm", "join-token", "-q", "worker"], str(manager.socket))
        out, err, status = run(
            [DOCKER, "swarm", "join", "--token", token.strip(), manager.addr], str(worker.socket)
        )
        assert (out, err, status) == ("This node joined a swarm as a worker.\n", "", 0)
        listed, _, _ = run(
            [DOCKER, "node", "ls", "--format", "{{.Hostname}} {{.Status}}"], str(manager.socket)
        )
        assert sorted(listed.split("\n")[:-1]) == ["manager1 Ready", "worker1 Ready"]
    finally:
        cluster.close()


def test_docker_cli_rotates_the_root_ca(short_tmp):
    """`docker swarm ca --rotate` waits for shoal's rotation as for Swarm's, and ends with
    the new root, the one shoal's CLI shows."""
    with local_cluster(short_tmp, workers=1, init_args=("--dispatcher-heartbeat", "1s")) as c:
        sock = str(c.manager.socket)
        old, _, _ = run([DOCKER, "swarm", "ca"], sock)
        out, err, status = run([DOCKER, "swarm", "ca", "--rotate"], sock)
        assert (err, status) == ("", 0)
        progress, _, cert = out.partition("-----BEGIN CERTIFICATE-----")
        assert progress.startswith("desired root digest: \n  rotated TLS certificates: \n")
        new = "-----BEGIN CERTIFICATE-----" + cert
        assert new != old
        assert new == c.manager.cli("swarm", "ca").stdout
