"""``shoal stack`` end to end on the process runtime (no container engine): a two-service
stack from a compose file deployed, re-deployed unchanged (no task restarted, no new service
version), one service changed (only it is updated), a service dropped with --prune, the stack
listed, its tasks and services shown, and ``stack rm`` leaving nothing behind. Bad compose
files are refused with Docker's messages and change nothing."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.e2e.conftest import WHOAMI
from tests.e2e.harness import LocalCluster, Node, local_cluster, wait_for

pytestmark = pytest.mark.e2e

STACK = """version: "3.8"
x-shoal-runtime: process
services:
  web:
    image: {python}
    command: [{whoami}]
    environment:
      WHOAMI: "{{{{.Service.Name}}}}.{{{{.Task.Slot}}}}"
      GREETING: ${{GREETING:-hello}}
    deploy:
      replicas: 2
  worker:
    image: sleep
    command: ["300"]
"""


@pytest.fixture
def cluster(short_tmp: Path):
    with local_cluster(short_tmp, workers=1, init_args=("--dispatcher-heartbeat", "1s")) as c:
        yield c


def _label(stack: str) -> str:
    return quote(json.dumps({"label": [f"com.docker.stack.namespace={stack}"]}))


def _services(node: Node, stack: str) -> dict[str, dict]:
    return {s["Spec"]["Name"]: s for s in node.get(f"/services?filters={_label(stack)}")}


def _running(cluster: LocalCluster, service: str, count: int) -> list[dict]:
    return wait_for(
        lambda: (tasks := cluster.running_tasks(service)) and len(tasks) == count and tasks,
        what=f"{count} running tasks of {service}",
    )


def _deploy(node: Node, path: Path, *extra: str, env: dict | None = None):
    return node.cli("stack", "deploy", "-c", str(path), *extra, "app", env=env)


def test_stack_lifecycle_on_the_process_runtime(cluster: LocalCluster, short_tmp: Path):
    m = cluster.manager
    compose = short_tmp / "docker-compose.yml"
    compose.write_text(STACK.format(python=sys.executable, whoami=WHOAMI))

    first = _deploy(m, compose)
    assert first.stdout == (
        "Creating network app_default\nCreating service app_web\nCreating service app_worker\n"
    )
    assert first.stderr == (
        "Since --detach=false was not specified, tasks will be created in the background.\n"
        "In a future release, --detach=false will become the default.\n"
    )
    web_tasks = {t["ID"] for t in _running(cluster, "app_web", 2)}
    worker_tasks = {t["ID"] for t in _running(cluster, "app_worker", 1)}
    services = _services(m, "app")
    assert sorted(services) == ["app_web", "app_worker"]
    web = services["app_web"]["Spec"]
    assert web["TaskTemplate"]["Runtime"] == "process"
    assert "GREETING=hello" in web["TaskTemplate"]["ContainerSpec"]["Env"]
    [network] = m.get(f"/networks?filters={_label('app')}")
    assert network["Name"] == "app_default"
    assert network["Driver"] == "overlay"
    versions = {name: s["Version"]["Index"] for name, s in services.items()}

    # the same file again: every service "updated", none changed
    again = _deploy(m, compose, "--detach=true")
    ids = {name: s["ID"] for name, s in services.items()}
    assert again.stdout == (
        f"Updating service app_web (id: {ids['app_web']})\n"
        f"Updating service app_worker (id: {ids['app_worker']})\n"
    )
    assert again.stderr == ""
    assert {n: s["Version"]["Index"] for n, s in _services(m, "app").items()} == versions
    assert {t["ID"] for t in cluster.running_tasks("app_web")} == web_tasks

    # one variable changes one service: only it is updated
    # not detached: the CLI waits for every service of the stack to converge, as Docker's
    changed = _deploy(m, compose, "--detach=false", env={"GREETING": "bonjour"})
    lines = changed.stdout.splitlines()
    assert lines[:2] == [
        f"Updating service app_web (id: {ids['app_web']})",
        f"Updating service app_worker (id: {ids['app_worker']})",
    ]
    assert f"verify: Service {ids['app_web']} converged" in lines
    assert f"verify: Service {ids['app_worker']} converged" in lines
    assert changed.stderr == ""
    after = _services(m, "app")
    assert after["app_worker"]["Version"]["Index"] == versions["app_worker"]
    assert after["app_web"]["Version"]["Index"] > versions["app_web"]
    wait_for(
        lambda: {t["ID"] for t in _running(cluster, "app_web", 2)}.isdisjoint(web_tasks),
        what="web's tasks replaced",
    )
    assert {t["ID"] for t in cluster.running_tasks("app_worker")} == worker_tasks

    listed = m.cli("stack", "ls")
    assert listed.stdout.split("\n")[:2] == ["NAME      SERVICES", "app       2"]
    ps = m.cli("stack", "ps", "--filter", "desired-state=running", "--format", "{{.Name}}", "app")
    assert sorted(ps.stdout.split()) == ["app_web.1", "app_web.2", "app_worker.1"]
    quiet = m.cli("stack", "ps", "-q", "app").stdout.split()
    assert quiet and all(len(i) == 12 for i in quiet)
    table = m.cli("stack", "services", "--format", "{{.Name}} {{.Mode}} {{.Replicas}}", "app")
    assert table.stdout == "app_web replicated 2/2\napp_worker replicated 1/1\n"

    # a file without the worker, with --prune: the worker goes
    compose.write_text(STACK.format(python=sys.executable, whoami=WHOAMI).split("  worker:")[0])
    pruned = _deploy(m, compose, "--prune", "-d")
    assert pruned.stdout == (
        f"Removing service app_worker\nUpdating service app_web (id: {ids['app_web']})\n"
    )
    assert sorted(_services(m, "app")) == ["app_web"]

    removed = m.cli("stack", "rm", "app")
    assert removed.stdout == "Removing service app_web\nRemoving network app_default\n"
    wait_for(lambda: not m.get("/tasks"), what="every task gone")
    assert m.get(f"/networks?filters={_label('app')}") == []
    assert m.cli("stack", "ls").stdout == "NAME      SERVICES\n"
    nothing = m.cli("stack", "rm", "app")
    assert nothing.stderr == "Nothing found in stack: app\n"
    gone = m.cli("stack", "ps", "app", check=False)
    assert (gone.returncode, gone.stderr) == (1, "nothing found in stack: app\n")


SHOAL = [sys.executable, "-m", "shoal"]
BAD_FILES = [
    (
        'version: "3.8"\nservices:\n  web:\n    image: sleep\n    foo: bar\n',
        "services.web Additional property foo is not allowed\n",
    ),
    (
        'version: "3.8"\nservices:\n  web:\n    image: sleep\n    deploy:\n      replicas: x\n',
        "services.web.deploy.replicas must be a integer\n",
    ),
    (
        'version: "3.8"\nservices:\n  web:\n    image: ${NOPE?set NOPE}\n',
        'invalid interpolation format for services.web.image: "required variable NOPE is '
        'missing a value: set NOPE"; you may need to escape any $ with another $\n',
    ),
    (
        'version: "3.8"\nservices:\n  web:\n    image: sleep\n    mem_limit: 1g\n',
        "Compose file contains unsupported options:\n\n"
        "mem_limit: Set resource limits using deploy.resources\n\n",
    ),
    (
        'version: "3.8"\nservices:\n  web:\n    image: sleep\n    networks: [nosuch]\n',
        'service web: undefined network "nosuch"\n',
    ),
]


def _swarm_objects(node: Node) -> tuple[list, list]:
    # the node's engine has local networks of its own, which other tests may change
    networks = [n for n in node.get("/networks") if n.get("Scope") == "swarm"]
    return node.get("/services"), networks


def test_bad_files_change_nothing(cluster: LocalCluster, short_tmp: Path):
    m = cluster.manager
    before = _swarm_objects(m)
    for text, message in BAD_FILES:
        path = short_tmp / "bad.yml"
        path.write_text(text)
        result = m.cli("stack", "deploy", "-d", "-c", str(path), "bad", check=False)
        assert (result.returncode, result.stdout, result.stderr) == (1, "", message)
        assert _swarm_objects(m) == before
        # the same file on stdin (-c -)
        piped = subprocess.run(
            [*SHOAL, "-H", f"unix://{m.socket}", "stack", "deploy", "-d", "-c", "-", "bad"],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (piped.returncode, piped.stderr) == (1, message)


DOCKER = shutil.which("docker")
RICH = Path(__file__).parents[1] / "unit" / "compose" / "docker_20_10"


def _comparable(node: Node) -> tuple[dict, dict]:
    """The stack's services and networks with what differs between any two deploys (IDs,
    versions, times, addresses) left out; references to networks by name."""
    networks = {n["Id"]: n for n in node.get(f"/networks?filters={_label('rich')}")}
    services = {}
    for service in node.get(f"/services?filters={_label('rich')}"):
        spec = service["Spec"]
        task = spec["TaskTemplate"]
        task["ContainerSpec"].pop("Privileges", None)  # Docker's CLI sends an empty one
        # Docker's CLI orders references to one secret at random (a Go map): by target here
        task["ContainerSpec"].get("Secrets", []).sort(key=lambda r: r["File"]["Name"])
        for ref in task["ContainerSpec"].get("Secrets", []):
            ref.pop("SecretID")
        for ref in task["ContainerSpec"].get("Configs", []):
            ref.pop("ConfigID")
        for attachment in task.get("Networks", []):
            attachment["Target"] = networks[attachment["Target"]]["Name"]
        services[spec["Name"]] = spec
    kept = ("Name", "Driver", "Scope", "Internal", "Attachable", "Labels")
    return services, {n["Name"]: {k: n.get(k) for k in kept} for n in networks.values()}


@pytest.mark.skipif(DOCKER is None, reason="no docker CLI on this machine")
def test_docker_cli_makes_the_same_stack_as_shoal(short_tmp: Path):
    # every key Docker converts but jobs, which shoal's managers do not run yet
    text = (RICH / "docker-compose.yml").read_text()
    text = text[: text.index("  job:")] + text[text.index("networks:\n  front") :]
    for name in ("pw.txt", "app.conf", "app.env"):
        shutil.copy(RICH / name, short_tmp / name)
    compose = short_tmp / "docker-compose.yml"
    compose.write_text(text)
    with local_cluster(short_tmp / "c", workers=0) as cluster:
        m = cluster.manager
        # the specs are compared, not the tasks: none is run (a drained node takes none), so
        # the shared engine is spared the containers
        m.cli("node", "update", "--availability", "drain", "manager1")
        env = {**os.environ, "DOCKER_HOST": f"unix://{m.socket}", "DOCKER_CLI_HINTS": "false"}
        docker = subprocess.run(
            [DOCKER, "stack", "deploy", "-c", str(compose), "rich"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert docker.returncode == 0, docker.stderr
        by_docker = _comparable(m)
        ps = subprocess.run(
            [DOCKER, "stack", "ps", "--format", "{{.Name}}", "rich"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert sorted(ps.stdout.split())[:2] == ["rich_api.1", "rich_api.2"]
        # the listings read the same through either CLI
        services_format = "{{.Name}} {{.Mode}} {{.Image}} {{.Ports}}"
        for args in (["stack", "ls"], ["stack", "services", "--format", services_format, "rich"]):
            by_docker_cli = subprocess.run(
                [DOCKER, *args], capture_output=True, text=True, env=env, timeout=60
            )
            assert m.cli(*args).stdout == by_docker_cli.stdout
        removed = subprocess.run(
            [DOCKER, "stack", "rm", "rich"], capture_output=True, text=True, env=env, timeout=60
        )
        assert removed.returncode == 0, removed.stderr
        wait_for(lambda: not m.get(f"/networks?filters={_label('rich')}"), what="rich gone")

        shoal = _deploy_named(m, compose, "rich")
        # the same lines (Docker's CLI goes through its maps in random order)
        assert sorted(shoal.stdout.splitlines()) == sorted(docker.stdout.splitlines())
        by_shoal = _comparable(m)
        assert by_shoal[1] == by_docker[1]
        for name, spec in by_docker[0].items():
            assert by_shoal[0][name] == spec
        # deployed again: no service is sent again (an update would keep a PreviousSpec)
        _deploy_named(m, compose, "rich")
        assert [s["Spec"]["Name"] for s in m.get("/services") if "PreviousSpec" in s] == []
        m.cli("stack", "rm", "rich")
        wait_for(lambda: not m.get("/tasks"), what="no task left")
        node_id = cluster.node_id(m)
        wait_for(lambda: not _engine_containers(node_id), what="the engine's containers gone")
    # as in Docker, a stack's volumes outlive it; this test's does not
    subprocess.run([DOCKER, "volume", "rm", "rich_data"], capture_output=True, timeout=60)


def _engine_containers(node_id: str) -> list[str]:
    listed = subprocess.run(
        [DOCKER or "docker", "ps", "-aq", "--filter", f"label=com.docker.swarm.node.id={node_id}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return listed.stdout.split()


def _deploy_named(node: Node, path: Path, name: str):
    return node.cli("stack", "deploy", "-c", str(path), name)


def test_deploy_on_a_node_in_no_swarm(short_tmp: Path):
    cluster = LocalCluster(short_tmp)
    try:
        node = cluster.add("lonely")
        compose = short_tmp / "docker-compose.yml"
        compose.write_text('version: "3.8"\nservices:\n  web:\n    image: sleep\n')
        result = node.cli("stack", "deploy", "-d", "-c", str(compose), "app", check=False)
        assert (result.returncode, result.stdout, result.stderr) == (
            1,
            "",
            'this node is not a swarm manager. Use "shoal swarm init" or "shoal swarm join" to '
            "connect this node to swarm and try again\n",
        )
    finally:
        cluster.close()
