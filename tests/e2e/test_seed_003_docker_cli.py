"""Seed 003's network walk, typed with Docker's own CLI against a shoal cluster, printing
what Docker's Swarm prints (captured from Docker 28's Swarm on this kind of machine; IDs,
addresses and times differ between any two clusters and are compared by shape).

A local cluster (three daemons on one host, sharing the machine's Docker Engine); container
tasks; needs root for overlay networks and a Docker Engine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docker import testimage
from tests.e2e.harness import LocalCluster, local_cluster, wait_for

DOCKER = shutil.which("docker")
IMAGE = testimage.IMAGE

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.docker,
    pytest.mark.skipif(DOCKER is None, reason="no docker CLI on this machine"),
    pytest.mark.skipif(os.geteuid() != 0, reason="overlay networks need root"),
    pytest.mark.skipif(
        testimage.unreachable_reason() is not None, reason=str(testimage.unreachable_reason())
    ),
]

# What Docker 28's Swarm prints for `docker network ls` once the seed's services run.
NETWORK_LS = """\
NETWORK ID     NAME              DRIVER    SCOPE
############   bridge            bridge    local
############   docker_gwbridge   bridge    local
############   host              host      local
############   ingress           overlay   swarm
############   my-network        overlay   swarm
############   none              null      local
"""


def docker(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DOCKER_HOST": f"unix://{cluster.manager.socket}",
        "DOCKER_CLI_HINTS": "false",
    }
    assert DOCKER is not None
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=120, env=env)


def engine(*args: str) -> subprocess.CompletedProcess:
    """The machine's Docker Engine itself, where the cluster's containers run."""
    assert DOCKER is not None
    env = {**os.environ, "DOCKER_HOST": testimage.engine_host()}
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=60, env=env)


def ids_hidden(text: str) -> str:
    """IDs as Docker's tables show them (12 characters, first in a row) become #s: an ID
    need not hold a digit, so a row's first column is what tells one apart from a name."""
    return re.sub(r"(?m)^[0-9a-z]{12}(?=   )", "#" * 12, text)


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    testimage.build()
    root = Path(tempfile.mkdtemp(prefix="shoal-s3-", dir="/tmp"))
    with local_cluster(root, workers=2) as c:
        yield c
    shutil.rmtree(root, ignore_errors=True)


def test_seed_003_networks_with_dockers_cli(cluster: LocalCluster) -> None:
    created = docker(cluster, "network", "create", "--driver", "overlay", "my-network")
    assert (created.stderr, created.returncode) == ("", 0)
    assert re.fullmatch(r"[0-9a-z]{25}\n", created.stdout), created.stdout
    network_id = created.stdout.strip()

    web = docker(
        cluster, "service", "create", "--replicas", "3", "--network", "my-network",
        "--name", "my-web", IMAGE,
        "sh", "-c", "mkdir -p /www && hostname > /www/index.html && httpd -f -p 80 -h /www",
    )  # fmt: skip
    assert web.returncode == 0, web.stderr
    assert web.stdout.splitlines()[-1].startswith("verify: Service ")
    busybox = docker(
        cluster, "service", "create", "--name", "my-busybox", "--network", "my-network",
        IMAGE, "sleep", "3000",
    )  # fmt: skip
    assert busybox.returncode == 0, busybox.stderr
    assert re.fullmatch(r"[0-9a-z]{25}", busybox.stdout.splitlines()[0])

    ps = docker(cluster, "service", "ps", "my-busybox")
    header, row = ps.stdout.splitlines()
    assert header.split() == [
        "ID", "NAME", "IMAGE", "NODE", "DESIRED", "STATE", "CURRENT", "STATE", "ERROR", "PORTS",
    ]  # fmt: skip
    assert row.split()[1:5] == ["my-busybox.1", IMAGE, row.split()[3], "Running"]
    assert ids_hidden(docker(cluster, "network", "ls").stdout) == NETWORK_LS

    endpoint = docker(cluster, "service", "inspect", "--format", "{{json .Endpoint}}", "my-web")
    assert re.fullmatch(
        r'\{"Spec":\{"Mode":"vip"\},"VirtualIPs":\[\{"NetworkID":"'
        + network_id
        + r'","Addr":"10\.0\.1\.2/24"\}\]\}\n',
        endpoint.stdout,
    ), endpoint.stdout

    # Inside the busybox container, as `docker exec -it my-busybox.1.<task id> sh` would be.
    (task,) = cluster.running_tasks("my-busybox")
    container = f"my-busybox.1.{task['ID']}"

    def nslookup(name: str) -> set[str]:
        out = engine("exec", container, "nslookup", name).stdout
        return {line for line in out.splitlines() if line}

    wait_for(lambda: "Address: 10.0.1.2" in nslookup("my-web"), what="my-web's VIP in DNS")
    assert nslookup("my-web") == {
        "Server:\t\t127.0.0.11",
        "Address:\t127.0.0.11:53",
        "Non-authoritative answer:",
        "Name:\tmy-web",
        "Address: 10.0.1.2",
    }
    tasks = sorted(
        a.split("/")[0]
        for t in cluster.running_tasks("my-web")
        for a in t["NetworksAttachments"][0]["Addresses"]
    )
    wait_for(
        lambda: {f"Address: {a}" for a in tasks} <= nslookup("tasks.my-web"),
        what="tasks.my-web to answer every replica",
    )
    pages = {
        engine("exec", container, "wget", "-q", "-O-", "my-web").stdout.strip() for _ in range(12)
    }
    assert len(pages) == 3, pages

    removed = docker(cluster, "network", "rm", "my-network")
    assert removed.returncode == 1
    assert re.fullmatch(
        r"Error response from daemon: rpc error: code = FailedPrecondition desc = network "
        + network_id
        + r" is in use by service [0-9a-z]{25}\nexit status 1\n",
        removed.stderr,
    ), removed.stderr
