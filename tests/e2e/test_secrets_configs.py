"""Secrets and configs end to end, driven by shoal's CLI and by Docker's own CLI pointed at a
shoal cluster of two managers: created from a file and from stdin (through the follower too),
listed and inspected (the two CLIs print the same), used by services with target, uid, gid and
mode, refused removal while in use (nothing changes), then let go and removed.

Delivery of the data to tasks is not tested here (another part of the project does it)."""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.harness import LocalCluster, Node, relative_times_masked, wait_for

DOCKER = shutil.which("docker")
pytestmark = pytest.mark.skipif(DOCKER is None, reason="no docker CLI on this machine")


def docker(node: Node, *args: str, stdin: str | None = None) -> tuple[str, str, int]:
    env = {**os.environ, "DOCKER_HOST": f"unix://{node.socket}", "DOCKER_CLI_HINTS": "false"}
    result = subprocess.run(
        [DOCKER, *args], input=stdin, capture_output=True, text=True, timeout=60, env=env
    )
    return result.stdout, result.stderr, result.returncode


def shoal(node: Node, *args: str, stdin: str | None = None) -> tuple[str, str, int]:
    result = subprocess.run(
        [*node_cli(node), *args], input=stdin, capture_output=True, text=True, timeout=60
    )
    as_docker = result.stderr.replace("'shoal ", "'docker ").replace("shoal: ", "docker: ")
    return result.stdout, as_docker, result.returncode


def node_cli(node: Node) -> list[str]:
    import sys

    return [sys.executable, "-m", "shoal", "-H", f"unix://{node.socket}"]


def same_output(node: Node, *args: str) -> tuple[str, str, int]:
    """What both CLIs print for ``args``. Relative times may tick between the two runs: tried
    again a few times, then compared with those times masked, as on
    a loaded machine each run may take more than a second (CI saw "9 seconds ago" against
    "10 seconds ago" three times running)."""
    for _ in range(3):
        ours, theirs = shoal(node, *args), docker(node, *args)
        if ours == theirs:
            return ours
        time.sleep(0.5)
    assert relative_times_masked(ours) == relative_times_masked(theirs)
    return ours


@pytest.fixture
def managers(short_tmp: Path):
    cluster = LocalCluster(short_tmp)
    try:
        cluster.add("manager1")
        cluster.init()
        cluster.join_manager(cluster.add("manager2"))
        yield cluster
    finally:
        cluster.close()


def test_secrets_and_configs_with_both_clis(managers: LocalCluster, short_tmp: Path):
    leader, follower = managers.nodes
    data_file = short_tmp / "pw.txt"
    data_file.write_text("s3cr3t\n")

    # --- create: from a file and from stdin, by either CLI, on either manager -------------
    out, err, status = shoal(leader, "secret", "create", "-l", "env=prod", "db-pw", str(data_file))
    assert (err, status) == ("", 0)
    pw_id = out.strip()
    out, err, status = docker(follower, "secret", "create", "api-key", "-", stdin="k3y")
    assert (err, status) == ("", 0)
    out, err, status = docker(leader, "config", "create", "app.conf", str(data_file))
    assert (err, status) == ("", 0)
    out, err, status = shoal(follower, "config", "create", "nginx.conf", "-", stdin="server {}\n")
    assert (err, status) == ("", 0)

    # Refusals, the same from both: a name taken, empty data, a bad name.
    for args, stdin, message in (
        (
            ("secret", "create", "db-pw", str(data_file)),
            None,
            "Error response from daemon: rpc error: code = AlreadyExists desc = "
            "secret db-pw already exists\n",
        ),
        (("secret", "create", "empty", "-"), "", "error reading from STDIN: data is empty\n"),
        (
            ("config", "create", "bad name", str(data_file)),
            None,
            "Error response from daemon: rpc error: code = InvalidArgument desc = invalid name, "
            "only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must "
            "be [a-zA-Z0-9]\n",
        ),
    ):
        for cli in (shoal, docker):
            assert cli(follower, *args, stdin=stdin) == ("", message, 1)

    # --- read: both CLIs print the same, on both managers -----------------------------------
    for node in (leader, follower):
        out, _, _ = same_output(node, "secret", "ls")
        assert out.splitlines()[0].split() == ["ID", "NAME", "DRIVER", "CREATED", "UPDATED"]
        assert [line.split()[1] for line in out.splitlines()[1:]] == ["api-key", "db-pw"]
        out, _, _ = same_output(node, "config", "ls")
        assert out.splitlines()[0].split() == ["ID", "NAME", "CREATED", "UPDATED"]
        same_output(node, "secret", "ls", "-q", "--filter", "label=env=prod")
        same_output(node, "secret", "inspect", "db-pw", "api-key")
        same_output(node, "secret", "inspect", "--pretty", "db-pw")
        same_output(node, "config", "inspect", "--pretty", "app.conf", "nginx.conf")
        same_output(node, "config", "inspect", "nosuch")
    inspected = json.loads(shoal(follower, "secret", "inspect", pw_id[:8])[0])
    assert inspected[0]["Spec"] == {"Name": "db-pw", "Labels": {"env": "prod"}}
    config = json.loads(shoal(leader, "config", "inspect", "nginx.conf")[0])[0]
    assert config["Spec"]["Data"] == "c2VydmVyIHt9Cg=="  # base64 of "server {}\n"

    # --- services using them (no replicas: running them is not what this tests) ----------
    out, err, status = shoal(
        leader,
        "service",
        "create",
        "-d",
        "--replicas",
        "0",
        "--name",
        "web",
        "--secret",
        "source=db-pw,target=password,uid=1000,gid=1001,mode=0400",
        "--secret",
        "api-key",
        "--config",
        "source=nginx.conf,target=/etc/nginx.conf,mode=0440",
        "busybox",
        "sleep",
        "300",
    )
    assert status == 0, err
    out, err, status = docker(
        follower,
        "service",
        "create",
        "-d",
        "--replicas",
        "0",
        "--name",
        "api",
        "--secret",
        "db-pw",
        "--config",
        "app.conf",
        "busybox",
        "sleep",
        "300",
    )
    assert status == 0, err
    spec = leader.get("/services/web")["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert spec["Secrets"] == [
        {
            "File": {"Name": "password", "UID": "1000", "GID": "1001", "Mode": 0o400},
            "SecretID": pw_id,
            "SecretName": "db-pw",
        },
        {
            "File": {"Name": "api-key", "UID": "0", "GID": "0", "Mode": 0o444},
            "SecretID": spec["Secrets"][1]["SecretID"],
            "SecretName": "api-key",
        },
    ]
    assert spec["Configs"][0]["File"] == {
        "Name": "/etc/nginx.conf",
        "UID": "0",
        "GID": "0",
        "Mode": 0o440,
    }
    api = follower.get("/services/api")["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert api["Configs"][0]["File"]["Name"] == "app.conf"  # the name, relative
    assert api["Secrets"][0]["File"]["Name"] == "db-pw"
    for name in ("web", "api"):
        out, _, _ = same_output(follower, "service", "inspect", "--pretty", name)
        assert " Target:\tpassword\n  Source:\tdb-pw\n" in out or name == "api"

    # A name that is not there, or one target twice: refused by both CLIs alike.
    for args in (
        ("service", "create", "-d", "--secret", "nosuch", "busybox"),
        ("service", "create", "-d", "--config", "db-pw", "busybox"),
        (
            "service",
            "create",
            "-d",
            "--secret",
            "db-pw",
            "--secret",
            "source=api-key,target=db-pw",
            "busybox",
        ),
        ("service", "update", "-d", "--secret-add", "source=api-key,target=password", "web"),
    ):
        out, err, status = same_output(leader, *args)
        assert status == 1 and err, args

    # --- in use: not removed, nothing changes -------------------------------------------
    before = leader.get("/secrets")
    out, err, status = same_output(leader, "secret", "rm", "db-pw")
    users = sorted((leader.get(f"/services/{n}") for n in ("web", "api")), key=lambda s: s["ID"])
    assert (out, err, status) == (
        "",
        "Error response from daemon: rpc error: code = InvalidArgument desc = secret 'db-pw' "
        "is in use by the following services: "
        + ", ".join(s["Spec"]["Name"] for s in users)
        + "\n",
        1,
    )
    assert leader.get("/secrets") == before
    out, err, status = docker(leader, "config", "rm", "nginx.conf", "app.conf")
    assert (out, status) == ("", 1)
    assert err.splitlines() == [
        "Error response from daemon: rpc error: code = InvalidArgument desc = config "
        "'nginx.conf' is in use by the following service: web",
        "Error response from daemon: rpc error: code = InvalidArgument desc = config "
        "'app.conf' is in use by the following service: api",
    ]

    # --- let go, then remove -------------------------------------------------------------
    out, err, status = shoal(follower, "service", "update", "-d", "--secret-rm", "db-pw", "web")
    assert (out, status) == ("web\n", 0), err
    out, err, status = docker(
        leader, "service", "update", "-d", "--secret-rm", "db-pw", "--config-rm", "app.conf", "api"
    )
    assert status == 0, err
    web = leader.get("/services/web")["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert [s["SecretName"] for s in web["Secrets"]] == ["api-key"]
    # The follower applies what the leader wrote a moment later.
    wait_for(
        lambda: (
            "Secrets" not in follower.get("/services/api")["Spec"]["TaskTemplate"]["ContainerSpec"]
        ),
        what="api without secrets on the follower",
    )

    assert docker(leader, "secret", "rm", "db-pw") == ("db-pw\n", "", 0)
    assert shoal(follower, "config", "rm", "app.conf") == ("app.conf\n", "", 0)
    wait_for(
        lambda: [s["Spec"]["Name"] for s in follower.get("/secrets")] == ["api-key"],
        what="db-pw gone on the follower",
    )
    assert shoal(leader, "secret", "rm", "db-pw", "api-key") == (
        "",
        "Error response from daemon: secret db-pw not found\n"
        "Error response from daemon: rpc error: code = InvalidArgument desc = secret "
        "'api-key' is in use by the following service: web\n",
        1,
    )
