"""Secrets and configs as a user of Docker's CLI meets them, on three nodes and both runtimes:
a secret created from stdin and a config from a file with Docker's own CLI; a service of three
replicas (one per node) using both, each with its target, uid, gid and mode; every task reads
the bytes it was given, owned and moded as asked; removing the secret while the service uses
it is refused and changes nothing; after ``service update --secret-rm`` no task has it and no
node holds it, in memory's files or on disk."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docker import testimage
from tests.e2e.harness import LocalCluster, local_cluster, wait_for

DOCKER = shutil.which("docker")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(DOCKER is None, reason="no docker CLI on this machine"),
    pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces need root"),
]

SHOW = (
    'stat -c "%n %u %g %a" /run/secrets/db.pw /etc/app/app.conf; '
    "md5sum < /run/secrets/db.pw; md5sum < /etc/app/app.conf; echo done; sleep 600"
)


def docker(
    cluster: LocalCluster, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCKER_HOST": f"unix://{cluster.manager.socket}"}
    assert DOCKER is not None
    return subprocess.run(
        [DOCKER, *args], input=stdin, capture_output=True, text=True, timeout=120, env=env
    )


@pytest.fixture
def three(short_tmp: Path) -> Iterator[LocalCluster]:
    with local_cluster(short_tmp, workers=2) as cluster:
        yield cluster


def node_files(cluster: LocalCluster, node_id: str) -> list[Path]:
    """Where a node keeps its tasks' secret and config files (its tmpfs, or /dev/shm)."""
    roots = [Path("/run/shoal") / node_id / "files", Path("/dev/shm") / f"shoal-{node_id}"]
    return [p for root in roots if root.is_dir() for p in root.rglob("*") if p.is_file()]


def holders(cluster: LocalCluster, needle: bytes) -> list[str]:
    """Every file of any node (state directory and task files) that holds ``needle``."""
    found = []
    for node in cluster.nodes:
        files = [p for p in node.state_dir.rglob("*") if p.is_file() and not p.is_symlink()]
        for path in files + node_files(cluster, cluster.node_id(node)):
            if needle in path.read_bytes():
                found.append(str(path))
    return found


@pytest.mark.parametrize("runtime", ["process", "container"])
def test_three_replicas_read_their_secret_and_config(three: LocalCluster, runtime: str):
    if runtime == "container" and testimage.unreachable_reason() is not None:
        pytest.skip(str(testimage.unreachable_reason()))
    m = three.manager
    password = "pw-" + hashlib.sha256(str(three.root).encode()).hexdigest()[:20]
    conf = three.root / "app.conf"
    conf.write_text("listen 8080\n")

    made = docker(three, "secret", "create", "db.pw", "-", stdin=password)
    assert (made.returncode, made.stderr) == (0, "")
    made = docker(three, "config", "create", "app.conf", str(conf))
    assert (made.returncode, made.stderr) == (0, "")

    refs = [
        "--secret", "source=db.pw,target=db.pw,uid=1000,gid=1001,mode=0400",
        "--config", "source=app.conf,target=/etc/app/app.conf,uid=33,gid=34,mode=0440",
    ]  # fmt: skip
    # A short stop grace: the tasks' shell ignores SIGTERM (a container's PID 1), and the
    # update below replaces the three one at a time; this test is not about the grace.
    common = ["-d", "--name", "readers", "--replicas", "3", "--replicas-max-per-node", "1",
              "--stop-grace-period", "1s"]  # fmt: skip
    if runtime == "container":
        created = docker(
            three, "service", "create", *common, *refs, testimage.IMAGE, "sh", "-c", SHOW
        )
        assert created.returncode == 0, created.stderr
    else:
        m.cli("service", "create", *common, "--runtime", "process", *refs, "sh", "-c", SHOW)

    def outputs() -> list[str]:
        """Each running task's output, read apart (the service's logs interleave them)."""
        running = three.running_tasks("readers")
        logs = [m.cli("service", "logs", "--raw", t["ID"], check=False).stdout for t in running]
        return logs if len(logs) == 3 and all("done" in out for out in logs) else []

    expected = [
        "/run/secrets/db.pw 1000 1001 400",
        "/etc/app/app.conf 33 34 440",
        hashlib.md5(password.encode()).hexdigest() + "  -",
        hashlib.md5(b"listen 8080\n").hexdigest() + "  -",
        "done",
    ]
    for out in wait_for(outputs, what="three tasks' output"):
        assert [line for line in out.splitlines() if line] == expected
    nodes = {t["NodeID"] for t in three.running_tasks("readers")}
    assert len(nodes) == 3

    # In use: refused in Docker's words, and nothing changes.
    before = docker(three, "secret", "inspect", "db.pw").stdout
    refused = docker(three, "secret", "rm", "db.pw")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "Error response from daemon: rpc error: code = InvalidArgument desc = "
        "secret 'db.pw' is in use by the following service: readers"
    )
    assert docker(three, "secret", "inspect", "db.pw").stdout == before

    # Let go of it: the new tasks run without it and no node keeps it anywhere.
    m.cli("service", "update", "-d", "--secret-rm", "db.pw", "readers")

    def replaced() -> bool:
        running = three.running_tasks("readers")
        return len(running) == 3 and all(
            not t["Spec"]["ContainerSpec"].get("Secrets") for t in running
        )

    wait_for(replaced, what="three tasks without the secret")
    wait_for(lambda: not holders(three, password.encode()), what="no node holding the secret")
    removed = docker(three, "secret", "rm", "db.pw")
    assert (removed.returncode, removed.stdout.strip()) == (0, "db.pw")
    m.cli("service", "rm", "readers")
