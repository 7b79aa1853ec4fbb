"""A local cluster (a manager and two workers, separate daemons) running services as real
containers on the one engine they share, driven through shoal's CLI."""

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.agent.exec.engine import Engine
from tests.docker.conftest import IMAGE
from tests.e2e.harness import LocalCluster, local_cluster, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster(docker_engine: str) -> Iterator[LocalCluster]:
    root = Path(tempfile.mkdtemp(prefix="shoal-ctr-", dir="/tmp"))
    try:
        with local_cluster(root, workers=2, init_args=("--dispatcher-heartbeat", "1s")) as c:
            yield c
    finally:
        shutil.rmtree(root, ignore_errors=True)


def containers(engine_host: str, node_ids: set[str]) -> list[dict]:
    """The engine's containers that belong to these nodes (the engine may have others)."""

    async def listing() -> list[dict]:
        engine = Engine(engine_host)
        try:
            found = await engine.containers({"com.docker.swarm.task": ""})
        finally:
            await engine.close()
        return [c for c in found if c["Labels"].get("com.docker.swarm.node.id") in node_ids]

    return asyncio.run(listing())


def test_services_run_as_containers_on_a_shared_engine(cluster: LocalCluster, docker_engine):
    m = cluster.manager
    node_ids = {cluster.node_id(n) for n in cluster.nodes}
    nodes = m.get("/nodes")
    runtime = {"Type": "Runtime", "Name": "container"}
    assert all(runtime in n["Description"]["Engine"]["Plugins"] for n in nodes)
    assert all(n["Description"]["Engine"]["EngineVersion"] != "" for n in nodes)

    m.cli(
        "service",
        "create",
        "-d",
        "--name",
        "web",
        "--replicas",
        "3",
        "--restart-delay",
        "0s",
        "--stop-grace-period",
        "0s",
        IMAGE,
        "sleep",
        "300",
    )
    running = wait_for(
        lambda: len(cluster.running_tasks("web")) == 3 and cluster.running_tasks("web"),
        what="3 running",
    )
    assert {t["NodeID"] for t in running} == node_ids, "spread over the three nodes"
    by_task = {
        c["Labels"]["com.docker.swarm.task.id"]: c for c in containers(docker_engine, node_ids)
    }
    for t in running:
        c = by_task[t["ID"]]
        assert c["Names"] == [f"/web.{t['Slot']}.{t['ID']}"]
        assert c["Id"] == t["Status"]["ContainerStatus"]["ContainerID"]
        assert c["Labels"]["com.docker.swarm.node.id"] == t["NodeID"]
        assert c["State"] == "running"
    ps = m.cli("service", "ps", "web").stdout
    assert ps.count("Running") >= 6  # desired and current state of each

    # Killed behind shoal's back: the task fails, and the restart policy starts another.
    victim = running[0]
    asyncio.run(_kill(docker_engine, victim["Status"]["ContainerStatus"]["ContainerID"]))
    wait_for(
        lambda: any(
            t["ID"] == victim["ID"] and t["Status"]["State"] == "failed"
            for t in cluster.tasks("web")
        ),
        what="killed task failed",
    )
    failed = next(t for t in cluster.tasks("web") if t["ID"] == victim["ID"])
    assert failed["Status"]["Err"] == "task: non-zero exit (137)"
    wait_for(
        lambda: (
            len(cluster.running_tasks("web")) == 3
            and victim["ID"] not in {t["ID"] for t in cluster.running_tasks("web")}
        ),
        what="a replacement running",
    )

    # A worker's daemon dies and comes back: its container ran on, and is the same task's.
    worker = cluster.nodes[2]
    wid = cluster.node_id(worker)
    [mine] = [t for t in cluster.running_tasks("web") if t["NodeID"] == wid]
    cid = mine["Status"]["ContainerStatus"]["ContainerID"]
    worker.kill()
    assert {c["Id"]: c["State"] for c in containers(docker_engine, {wid})}[cid] == "running"
    worker.start()
    wait_for(lambda: m.get(f"/nodes/{wid}")["Status"]["State"] == "ready", what="worker back")
    wait_for(lambda: len(cluster.running_tasks("web")) == 3, what="3 running")
    [again] = [t for t in cluster.running_tasks("web") if t["NodeID"] == wid]
    assert (again["ID"], again["Status"]["ContainerStatus"]["ContainerID"]) == (mine["ID"], cid)

    # Nothing left behind: service rm removes every container, history included.
    m.cli("service", "rm", "web")
    wait_for(lambda: not containers(docker_engine, node_ids), what="no containers left")


def test_failing_container_is_restarted_per_policy(cluster: LocalCluster, docker_engine):
    m = cluster.manager
    m.cli(
        "service",
        "create",
        "-d",
        "--name",
        "crash",
        "--restart-condition",
        "on-failure",
        "--restart-delay",
        "0s",
        "--restart-max-attempts",
        "2",
        IMAGE,
        "sh",
        "-c",
        "exit 3",
    )
    wait_for(
        lambda: (
            len(cluster.tasks("crash")) == 3
            and all(t["Status"]["State"] == "failed" for t in cluster.tasks("crash"))
        ),
        what="first try and two restarts, all failed",
    )
    tasks = cluster.tasks("crash")
    assert {t["Status"]["Err"] for t in tasks} == {"task: non-zero exit (3)"}
    assert {t["Status"]["ContainerStatus"]["ExitCode"] for t in tasks} == {3}
    # A missing image: the task is rejected with Docker's message.
    m.cli("service", "create", "-d", "--name", "ghost", "127.0.0.1:9/nosuchimage:1.0")
    rejected = wait_for(
        lambda: [t for t in cluster.tasks("ghost") if t["Status"]["State"] == "rejected"],
        what="rejected",
    )
    assert rejected[0]["Status"]["Err"] == "No such image: 127.0.0.1:9/nosuchimage:1.0"
    assert rejected[0]["Status"]["Message"] == "preparing"


async def _kill(engine_host: str, container_id: str) -> None:
    engine = Engine(engine_host)
    try:
        await engine.kill(container_id)
    finally:
        await engine.close()


def test_ingress_port_of_a_container_service_answers_on_every_node(
    cluster: LocalCluster, docker_engine
):
    """Seed 000's `service create --name my_web --replicas 3 --publish 8080:80 nginx`, with a
    busybox web server: the published port answers on every node, spread over the containers."""
    import urllib.request

    from tests.e2e.test_routing_mesh import free_on_all

    m = cluster.manager
    hosts = [n.host for n in cluster.nodes]
    port = free_on_all(hosts)
    serve = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"
    m.cli(
        "service",
        "create",
        "-d",
        "--name",
        "my_web",
        "--replicas",
        "3",
        "--hostname",
        "{{.Task.Name}}",
        "--publish",
        f"{port}:80",
        IMAGE,
        "sh",
        "-c",
        serve,
    )
    wait_for(lambda: len(cluster.running_tasks("my_web")) == 3, what="3 containers running")

    def answers(host: str) -> set[str]:
        out = set()
        for _ in range(12):
            with urllib.request.urlopen(f"http://{host}:{port}/", timeout=5) as resp:
                out.add(resp.read().decode().strip().rsplit(".", 1)[0])
        return out

    for host in hosts:
        wait_for(
            lambda host=host: answers(host) == {"my_web.1", "my_web.2", "my_web.3"},
            what=f"mesh on {host}",
        )
    m.cli("service", "rm", "my_web")
