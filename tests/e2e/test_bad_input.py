"""Bad input tried as a new user would: each gets Docker's error, a non-zero exit status, and
leaves the cluster as it was."""

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.e2e.conftest import whoami_args
from tests.e2e.harness import LocalCluster, local_cluster, wait_for


@pytest.fixture(scope="module")
def swarm():
    root = Path(tempfile.mkdtemp(prefix="shoal-bad-", dir="/tmp"))
    with local_cluster(root, workers=1) as c:
        c.manager.cli(*whoami_args("web", 2))
        wait_for(lambda: len(c.running_tasks("web")) == 2, what="web running")
        yield c
    shutil.rmtree(root, ignore_errors=True)


def snapshot(c: LocalCluster) -> tuple:
    services = sorted((s["ID"], s["Version"]["Index"]) for s in c.manager.get("/services"))
    nodes = sorted(
        (n["ID"], n["Spec"]["Availability"], n["Spec"]["Role"]) for n in c.manager.get("/nodes")
    )
    networks = sorted(n["Id"] for n in c.manager.get("/networks"))
    return services, nodes, networks


def refused(c: LocalCluster, *args: str, status: int = 1, node=None) -> str:
    before = snapshot(c)
    result = (node or c.manager).cli(*args, check=False)
    assert result.returncode == status, (args, result.stdout, result.stderr)
    assert snapshot(c) == before, f"{args} changed the cluster"
    return result.stderr


def test_unknown_service(swarm):
    assert (
        refused(swarm, "service", "rm", "nosuch")
        == "Error response from daemon: service nosuch not found\n"
    )
    assert refused(swarm, "service", "inspect", "nosuch") == "Error: no such service: nosuch\n"
    assert refused(swarm, "service", "ps", "nosuch") == "no such service: nosuch\n"
    assert refused(swarm, "service", "scale", "nosuch=2") == (
        "nosuch: Error response from daemon: service nosuch not found\n"
    )
    assert refused(swarm, "service", "update", "--replicas", "3", "nosuch") == (
        "Error response from daemon: service nosuch not found\n"
    )


def test_unknown_node(swarm):
    assert (
        refused(swarm, "node", "inspect", "nosuchnode")
        == "Error response from daemon: node nosuchnode not found\n"
    )
    assert refused(swarm, "node", "update", "--availability", "drain", "nosuchnode") == (
        "Error response from daemon: node nosuchnode not found\n"
    )
    assert (
        refused(swarm, "node", "rm", "nosuchnode")
        == "Error response from daemon: node nosuchnode not found\n"
    )


def test_bad_flag_values(swarm):
    err = refused(
        swarm, "service", "create", "--replicas", "abc", "--name", "x", "busybox", status=125
    )
    assert err.startswith(
        'invalid argument "abc" for "--replicas" flag: strconv.ParseUint: parsing "abc": invalid syntax\n'
    )
    assert "Usage:  shoal service create [OPTIONS] IMAGE [COMMAND] [ARG...]" in err
    err = refused(swarm, "service", "create", "-p", "99999:80", "busybox", status=125)
    assert err.startswith(
        'invalid argument "99999:80" for "-p, --publish" flag: invalid hostPort: 99999\n'
    )
    assert refused(swarm, "service", "create", "--bogus-flag", "busybox", status=125).startswith(
        "unknown flag: --bogus-flag\n"
    )
    assert refused(swarm, "node", "update", "--availability", "bogus", "worker1") == (
        'Error response from daemon: invalid Availability: "bogus"\n'
    )
    assert refused(swarm, "service", "create", "-d", "--restart-condition", "bogus", "busybox") == (
        'Error response from daemon: invalid RestartCondition: "bogus"\n'
    )
    assert refused(swarm, "service", "create", "-d", "--mode", "bogus", "busybox") == (
        "Unknown mode: bogus, only replicated and global supported\n"
    )
    assert refused(swarm, "service", "scale", "web=abc") == (
        'web: invalid replicas value abc: strconv.ParseUint: parsing "abc": invalid syntax\n'
    )
    assert refused(swarm, "service", "create", status=1).startswith(
        "shoal: 'shoal service create' requires at least 1 argument\n"
    )


def test_unknown_network(swarm):
    assert refused(swarm, "service", "create", "-d", "--network", "my-network", "busybox") == (
        "Error response from daemon: network my-network not found\n"
    )


def test_network_options_shoal_does_not_honour(swarm):
    """Taken and silently ignored, these would give a network other than the one asked for."""
    create = ("network", "create", "-d", "overlay")
    assert "encrypted overlay networks (--opt encrypted) are not supported" in refused(
        swarm, *create, "--opt", "encrypted", "secret-net"
    )
    assert "auxiliary addresses (--aux-address) are not supported" in refused(
        swarm, *create, "--subnet", "10.9.0.0/24", "--aux-address", "a=10.9.0.5", "aux-net"
    )
    assert 'ipam driver "other" is not supported' in refused(
        swarm, *create, "--ipam-driver", "other", "ipam-net"
    )
    assert refused(swarm, *create, "--aux-address", "a=10.9.0.5", "aux-net") == (
        "no matching subnet for aux-address 10.9.0.5\n"
    )


def test_duplicate_name(swarm):
    assert refused(swarm, *whoami_args("web", 1)) == (
        "Error response from daemon: rpc error: code = AlreadyExists desc = "
        "name conflicts with an existing object: service web already exists\n"
    )


def test_stale_version(swarm):
    service = swarm.manager.get("/services/web")
    stale = service["Version"]["Index"]
    spec = service["Spec"]
    ok = swarm.manager.api("POST", f"/services/web/update?version={stale}", spec)
    assert ok.status == 200, ok.body
    before = snapshot(swarm)
    again = swarm.manager.api("POST", f"/services/web/update?version={stale}", spec)
    assert again.status == 500
    assert again.body == {"message": "rpc error: code = Unknown desc = update out of sequence"}
    assert snapshot(swarm) == before


def test_wrong_token(swarm, tmp_path):
    nodes_before = len(swarm.manager.get("/nodes"))
    stranger = swarm.add("stranger")
    try:
        good = swarm.manager.cli("swarm", "join-token", "-q", "worker").stdout.strip()
        wrong = good[:-25] + "0" * 25
        for token, message in (
            ("bogus", "Error response from daemon: invalid join token\n"),
            (
                wrong,
                "Error response from daemon: rpc error: code = InvalidArgument desc = "
                "A valid join token is necessary to join this cluster\n",
            ),
        ):
            result = stranger.cli(
                "swarm", "join", "--token", token, swarm.manager.addr, check=False
            )
            assert result.returncode == 1
            assert result.stderr == message
        assert len(swarm.manager.get("/nodes")) == nodes_before
        assert "Swarm: inactive" in stranger.cli("info").stdout
    finally:
        stranger.stop()
        swarm.nodes.remove(stranger)


def test_worker_asked_for_cluster_state(swarm):
    worker = swarm.nodes[1]
    message = (
        "Error response from daemon: This node is not a swarm manager. Worker nodes can't be used "
        "to view or modify cluster state. Please run this command on a manager node or promote "
        "the current node to a manager.\n"
    )
    for args in (("node", "ls"), ("service", "ls"), ("service", "create", "-d", "busybox")):
        assert refused(swarm, *args, node=worker) == message


def test_certificate_expiry_below_the_minimum(swarm):
    before = swarm.manager.get("/swarm")["Spec"]["CAConfig"]
    assert refused(swarm, "swarm", "update", "--cert-expiry", "30m") == (
        "Error response from daemon: rpc error: code = InvalidArgument desc = "
        "minimum certificate expiry time is: 1h0m0s\n"
    )
    assert swarm.manager.get("/swarm")["Spec"]["CAConfig"] == before
