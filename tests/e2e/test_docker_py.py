"""docker-py (the Python SDK for Docker) as a real client of shoal: its ``APIClient`` and
``DockerClient`` build a swarm (init, join, leave), and drive services (replicated and
global: create, list, inspect, update, scale, logs, remove), nodes, tasks, networks, secrets
and configs, sending what the SDK sends (lower-case field names such as
``"Mode": {"global": {}}``, specs read with defaults and sent back) and reading what shoal
answers as it reads Docker's."""

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.errors import APIError, NotFound
from docker.types import ContainerSpec, ServiceMode, TaskTemplate, UpdateConfig

from tests.e2e.harness import LocalCluster, Node, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

IMAGE = "shoal-test/busybox"


def client(node: Node) -> docker.DockerClient:
    return docker.DockerClient(base_url=f"unix://{node.socket}", timeout=60)


class Swarm:
    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.manager, self.worker = cluster.nodes
        self.docker = client(self.manager)
        self.api = self.docker.api


@pytest.fixture(scope="module")
def swarm() -> Iterator[Swarm]:
    """A manager and a worker, made a swarm by docker-py alone."""
    root = Path(tempfile.mkdtemp(prefix="shoal-dpy-", dir="/tmp"))
    cluster = LocalCluster(root)
    try:
        manager = cluster.add("manager1")
        worker = cluster.add("worker1")
        node_id = client(manager).swarm.init(advertise_addr=manager.host)
        assert node_id == cluster.node_id(manager)
        # Read and updated at once: init answers once its node is ready, as Docker's does,
        # so nothing writes the node between (this answered "update out of sequence").
        (node,) = client(manager).nodes.list()
        assert node.attrs["Status"]["State"] == "ready"
        assert node.update({"Availability": "active", "Role": "manager", "Labels": {"a": "b"}})
        token = client(manager).swarm.attrs["JoinTokens"]["Worker"]
        assert client(worker).swarm.join(
            remote_addrs=[manager.addr], join_token=token, advertise_addr=worker.host
        )
        joined = client(manager).nodes.get(cluster.node_id(worker))
        assert joined.update({"Availability": "active", "Role": "worker", "Labels": {}})
        yield Swarm(cluster)
    finally:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)


def wait_running(swarm: Swarm, service: str, count: int) -> list[dict]:
    def running() -> list[dict] | None:
        tasks = swarm.api.tasks(filters={"service": service, "desired-state": "running"})
        up = [t for t in tasks if t["Status"]["State"] == "running"]
        return up if len(up) == count and len(tasks) == count else None

    return wait_for(running, what=f"{count} running tasks of {service}")


def wait_update_done(service: docker.models.services.Service) -> None:
    """docker-py reads a spec with its defaults and sends it all back, so its scale starts a
    rolling update (as against Docker's daemon); the service changes until it completes."""

    def done() -> bool:
        service.reload()
        status = service.attrs.get("UpdateStatus")
        return status is None or status.get("State") == "completed"

    wait_for(done, what=f"{service.name}'s update to complete")


# --- the swarm ----------------------------------------------------------------------------


def test_swarm_attrs_show_what_docker_shows(swarm: Swarm) -> None:
    attrs = swarm.docker.swarm.attrs
    # As Docker 20.10 shows a swarm initialised without --default-addr-pool.
    assert attrs["DefaultAddrPool"] is None
    assert attrs["SubnetSize"] == 24 and attrs["DataPathPort"] == 4789
    assert list(attrs)[-4:] == ["DefaultAddrPool", "SubnetSize", "DataPathPort", "JoinTokens"]
    assert swarm.api.inspect_swarm()["ID"] == attrs["ID"]


def test_swarm_update(swarm: Swarm) -> None:
    swarm.docker.swarm.reload()
    before = swarm.docker.swarm.attrs["JoinTokens"]["Worker"]
    assert swarm.docker.swarm.update(snapshot_interval=5000, rotate_worker_token=True)
    swarm.docker.swarm.reload()
    attrs = swarm.docker.swarm.attrs
    assert attrs["Spec"]["Raft"]["SnapshotInterval"] == 5000
    assert attrs["JoinTokens"]["Worker"] != before


def test_a_node_joins_and_leaves(swarm: Swarm) -> None:
    extra = swarm.cluster.add("worker2")
    try:
        token = swarm.docker.swarm.attrs["JoinTokens"]["Worker"]
        swarm.docker.swarm.reload()
        token = swarm.docker.swarm.attrs["JoinTokens"]["Worker"]
        other = client(extra)
        assert other.swarm.join(
            remote_addrs=[swarm.manager.addr], join_token=token, advertise_addr=extra.host
        )
        assert other.info()["Swarm"]["LocalNodeState"] == "active"
        node_id = other.info()["Swarm"]["NodeID"]
        wait_for(
            lambda: swarm.docker.nodes.get(node_id).attrs["Status"]["State"] == "ready",
            what="worker2 ready",
        )
        assert other.swarm.leave()
        assert other.info()["Swarm"]["LocalNodeState"] == "inactive"
        wait_for(
            lambda: swarm.docker.nodes.get(node_id).attrs["Status"]["State"] == "down",
            what="worker2 down",
        )
        swarm.docker.nodes.get(node_id).remove(force=True)
    finally:
        extra.stop()


# --- nodes --------------------------------------------------------------------------------


def test_nodes_list_inspect_and_update_straight_after_reading(swarm: Swarm) -> None:
    nodes = swarm.docker.nodes.list()
    assert sorted(n.attrs["Description"]["Hostname"] for n in nodes) == ["manager1", "worker1"]
    for node in nodes:
        for value in ("a", "b", "c"):
            node.reload()
            spec = dict(node.attrs["Spec"], Labels={"pass": value})
            assert node.update(spec) is True
            node.reload()
            assert node.attrs["Spec"]["Labels"] == {"pass": value}
    worker = swarm.docker.nodes.list(filters={"role": "worker"})[0]
    # As docker-py's documentation writes a spec: lower-case keys are Go's too.
    assert worker.update({"availability": "active", "role": "worker", "labels": {"x": "y"}})
    assert swarm.api.inspect_node(worker.id)["Spec"] == {
        "Labels": {"x": "y"},
        "Role": "worker",
        "Availability": "active",
    }


# --- services and tasks -------------------------------------------------------------------


def test_replicated_service_create_inspect_scale_update_logs_and_remove(swarm: Swarm) -> None:
    service = swarm.docker.services.create(
        IMAGE,
        ["sh", "-c", "echo hello from $HOSTNAME; sleep 600"],
        name="dpyweb",
        mode=ServiceMode("replicated", replicas=2),
        # A plain dict as a user may write one: Go matches these keys in any case.
        update_config={"parallelism": 1, "order": "start-first"},
        labels={"app": "dpy"},
    )
    try:
        assert [s.name for s in swarm.docker.services.list(filters={"name": "dpyweb"})] == [
            "dpyweb"
        ]
        spec = swarm.api.inspect_service("dpyweb")["Spec"]
        assert spec["Mode"] == {"Replicated": {"Replicas": 2}}
        # "order" matched as Go matches it; the failure action filled as Docker's daemon does.
        assert spec["UpdateConfig"] == {
            "Parallelism": 1,
            "FailureAction": "pause",
            "MaxFailureRatio": 0,
            "Order": "start-first",
        }
        assert spec["Labels"] == {"app": "dpy"}
        wait_running(swarm, "dpyweb", 2)
        assert len(service.tasks()) == 2

        assert service.scale(3)
        wait_running(swarm, "dpyweb", 3)
        wait_update_done(service)

        service.reload()
        service.update(env=["GREETING=hi"], update_config=UpdateConfig(parallelism=2))
        service.reload()
        container = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
        assert container["Env"] == ["GREETING=hi"]
        assert service.attrs["Spec"]["UpdateConfig"]["Parallelism"] == 2
        wait_update_done(service)
        wait_running(swarm, "dpyweb", 3)

        def logged() -> list[bytes]:
            lines = b"".join(service.logs(stdout=True, stderr=True)).splitlines()
            return [line for line in lines if b"hello from" in line]

        assert wait_for(logged, what="the service's log lines")
    finally:
        service.remove()
    with pytest.raises(NotFound):
        swarm.docker.services.get("dpyweb")


def test_global_service_as_docker_py_sends_its_mode(swarm: Swarm) -> None:
    task = TaskTemplate(ContainerSpec(IMAGE, ["sleep", "600"]))
    created = swarm.api.create_service(task, name="dpyglobal", mode=ServiceMode("global"))
    try:
        spec = swarm.api.inspect_service(created["ID"])["Spec"]
        assert spec["Mode"] == {"Global": {}}
        tasks = wait_running(swarm, "dpyglobal", 2)
        assert {t["NodeID"] for t in tasks} == {n.id for n in swarm.docker.nodes.list()}
        assert swarm.api.inspect_task(tasks[0]["ID"])["ServiceID"] == created["ID"]
        service = swarm.docker.services.get("dpyglobal")
        with pytest.raises(docker.errors.InvalidArgument):
            service.scale(2)  # docker-py refuses before it asks
    finally:
        swarm.api.remove_service(created["ID"])


def test_a_tasks_container_found_through_containers_json(swarm: Swarm) -> None:
    try:
        swarm.api.containers()
    except NotFound:
        pytest.skip(
            "GET /containers/json is the engine passthrough's (issue 14 item 1, branch "
            "engine-passthrough): not on this branch"
        )
    service = swarm.docker.services.create(IMAGE, ["sleep", "600"], name="dpyfind")
    try:
        (task,) = wait_running(swarm, "dpyfind", 1)
        node = (
            swarm.manager
            if task["NodeID"] == swarm.cluster.node_id(swarm.manager)
            else swarm.worker
        )
        found = client(node).containers.list(
            filters={"label": "com.docker.swarm.service.name=dpyfind"}
        )
        assert [c.id for c in found] == [task["Status"]["ContainerStatus"]["ContainerID"]]
        assert found[0].labels["com.docker.swarm.task.id"] == task["ID"]
    finally:
        service.remove()


def test_bad_spec_gets_dockers_error_and_changes_nothing(swarm: Swarm) -> None:
    before = len(swarm.docker.services.list())
    with pytest.raises(APIError) as err:
        swarm.api.create_service(
            TaskTemplate(ContainerSpec(IMAGE, ["true"])), name="dpybad", mode={"Replicated": 5}
        )
    assert err.value.status_code == 400
    assert len(swarm.docker.services.list()) == before


# --- networks, secrets and configs --------------------------------------------------------


def test_networks(swarm: Swarm) -> None:
    network = swarm.docker.networks.create("dpynet", driver="overlay", attachable=True)
    try:
        assert "dpynet" in [n.name for n in swarm.docker.networks.list()]
        shown = swarm.api.inspect_network(network.id)
        assert shown["Driver"] == "overlay" and shown["Scope"] == "swarm"
        assert shown["Attachable"] is True
    finally:
        network.remove()
    assert "dpynet" not in [n.name for n in swarm.docker.networks.list()]


def test_secrets_and_configs(swarm: Swarm) -> None:
    secret = swarm.docker.secrets.create(name="dpysecret", data=b"hush", labels={"a": "b"})
    config = swarm.docker.configs.create(name="dpyconfig", data=b"setting=1")
    try:
        assert [s.name for s in swarm.docker.secrets.list(filters={"name": "dpysecret"})] == [
            "dpysecret"
        ]
        assert "Data" not in swarm.docker.secrets.get(secret.id).attrs["Spec"]
        assert swarm.docker.configs.get("dpyconfig").attrs["Spec"]["Data"] == "c2V0dGluZz0x"
        service = swarm.docker.services.create(
            IMAGE,
            ["sleep", "600"],
            name="dpyfiles",
            secrets=[docker.types.SecretReference(secret.id, "dpysecret")],
            configs=[docker.types.ConfigReference(config.id, "dpyconfig")],
        )
        try:
            wait_running(swarm, "dpyfiles", 1)
            container = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
            assert container["Secrets"][0]["SecretName"] == "dpysecret"
            assert container["Configs"][0]["ConfigName"] == "dpyconfig"
        finally:
            service.remove()
    finally:
        # In use until the service's tasks are gone (as Docker's daemon refuses before).
        for obj in (secret, config):
            deadline = time.monotonic() + 30
            while True:
                try:
                    obj.remove()
                    break
                except APIError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)


# --- events -------------------------------------------------------------------------------


def test_events_stream_and_replay(swarm: Swarm) -> None:
    since = time.time()
    stream = swarm.docker.events(filters={"type": "service"}, decode=True)
    try:
        service = swarm.docker.services.create(IMAGE, ["sleep", "600"], name="dpyevents")
        created = next(stream)
        assert created["Type"] == "service" and created["Action"] == "create"
        assert created["Actor"] == {"ID": service.id, "Attributes": {"name": "dpyevents"}}
        assert created["scope"] == "swarm"
        service.remove()
        while (event := next(stream))["Action"] != "remove":
            assert event["Action"] == "update"
        assert event["Actor"]["ID"] == service.id
    finally:
        stream.close()
    past = list(
        swarm.docker.events(
            since=since, until=time.time(), filters={"type": "service"}, decode=True
        )
    )
    actions = [e["Action"] for e in past]
    assert actions[0] == "create" and actions[-1] == "remove"
