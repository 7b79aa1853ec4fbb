"""The conversion of a compose file that uses most keys, compared with what Docker 20.10's
CLI made of the same file on a real swarm (``docker stack deploy`` then ``service inspect``,
kept in docker_20_10/). The daemon adds its defaults and resolves names to IDs; those are
added to shoal's output (and the IDs left out) before comparing."""

import copy
import json
from pathlib import Path

import pytest

from shoal.compose import ComposeFile, convert, load

DATA = Path(__file__).parent / "docker_20_10"
SECOND = 1_000_000_000
UPDATE_DEFAULTS = {
    "Parallelism": 1,
    "FailureAction": "pause",
    "Monitor": 5 * SECOND,
    "MaxFailureRatio": 0,
    "Order": "stop-first",
}


def _as_daemon_stores(spec: dict) -> dict:
    """What Docker 20.10's daemon stores for a spec its CLI sent."""
    spec = copy.deepcopy(spec)
    container = spec["TaskTemplate"]["ContainerSpec"]
    container["Image"] += ":latest"
    container.setdefault("StopGracePeriod", 10 * SECOND)
    restart = spec["TaskTemplate"].setdefault("RestartPolicy", {})
    restart.setdefault("Condition", "any")
    restart.setdefault("Delay", 5 * SECOND)
    restart.setdefault("MaxAttempts", 0)
    for key in ("UpdateConfig", "RollbackConfig"):
        spec[key] = {**UPDATE_DEFAULTS, **spec.get(key, {})}
    spec["EndpointSpec"] = {"Mode": "vip", **spec["EndpointSpec"]}
    return spec


def _without_ids(spec: dict) -> dict:
    spec = copy.deepcopy(spec)
    task = spec["TaskTemplate"]
    container = task["ContainerSpec"]
    for key in ("Privileges", "DNSConfig", "Isolation"):
        container.pop(key, None)
    for ref in container.get("Secrets", []):
        ref.pop("SecretID", None)
    for ref in container.get("Configs", []):
        ref.pop("ConfigID", None)
    task.pop("ForceUpdate", None)
    task.pop("Runtime", None)
    for network in task["Networks"]:
        network.pop("Target")  # an ID there, a name here (the daemon resolves it)
    return spec


@pytest.fixture(scope="module")
def stack():
    path = DATA / "docker-compose.yml"
    project = load([ComposeFile(str(path), path.read_text())], env={}, working_dir=str(DATA))
    return convert("rich", project)


@pytest.mark.parametrize("service", ["api", "web", "job"])
def test_service_spec_is_what_docker_made(stack, service):
    docker = json.loads((DATA / f"rich_{service}.json").read_text())
    ours = _as_daemon_stores(stack.services[service])
    assert _without_ids(ours) == _without_ids(docker)


def test_networks_are_sorted_by_name_with_the_service_as_alias(stack):
    assert stack.services["web"]["TaskTemplate"]["Networks"] == [
        {"Target": "rich_back", "Aliases": ["web"]},
        {"Target": "rich_front", "Aliases": ["web"]},
    ]
    assert stack.services["api"]["TaskTemplate"]["Networks"] == [
        {"Target": "rich_back", "Aliases": ["api-alias", "api"]}
    ]


def test_networks_secrets_configs_are_scoped_and_labelled(stack):
    label = {"com.docker.stack.namespace": "rich"}
    assert stack.networks == {
        "rich_back": {
            "Name": "rich_back",
            "Labels": label,
            "Driver": "overlay",
            "Attachable": True,
        },
        "rich_default": {"Name": "rich_default", "Labels": label, "Driver": "overlay"},
        "rich_front": {
            "Name": "rich_front",
            "Labels": {"a": "b", **label},
            "Driver": "overlay",
        },
    }
    assert stack.secrets == [{"Name": "rich_pw", "Labels": label, "Data": "czNjcjN0"}]
    assert stack.configs == [{"Name": "rich_conf", "Labels": label, "Data": "Y29uZg=="}]


def test_two_files_merge_as_docker_merged_them():
    """``-c merge-base.yml -c merge-override.yml``: what Docker 20.10 made of it (service
    inspect on the reference swarm): the command replaced, environment and labels merged key
    by key, ports and DNS servers and constraints appended, volumes replaced by target."""
    files = [DATA / "merge-base.yml", DATA / "merge-override.yml"]
    project = load([ComposeFile(str(f), f.read_text()) for f in files], env={}, working_dir="/")
    spec = convert("t8", project).services["web"]
    container = spec["TaskTemplate"]["ContainerSpec"]
    assert container["Args"] == ["sleep", "301"]
    assert container["Env"] == ["A=1", "B=2"]
    assert [(p["PublishedPort"], p["TargetPort"]) for p in spec["EndpointSpec"]["Ports"]] == [
        (8001, 80),
        (8002, 81),
        (8003, 80),
    ]
    assert container["DNSConfig"] == {"Nameservers": ["1.1.1.1", "8.8.8.8"]}
    assert spec["TaskTemplate"]["Placement"] == {
        "Constraints": ["node.role==manager", "node.role!=worker"]
    }
    assert [(m["Source"], m["Target"]) for m in container["Mounts"]] == [
        ("/tmp", "/a"),
        ("/var", "/b"),
    ]
    assert spec["Mode"] == {"Replicated": {"Replicas": 2}}
    assert spec["Labels"]["x"] == "1"


def test_short_syntax_as_docker_read_it():
    """Ports and volumes in their short forms (an address, ranges, no published port, UDP;
    read-only, nocopy, a relative path, an anonymous volume, a propagation), as Docker 20.10
    converted them (short-syntax/t9_web.json, from the reference swarm)."""
    folder = DATA / "short-syntax"
    path = folder / "docker-compose.yml"
    project = load([ComposeFile(str(path), path.read_text())], env={}, working_dir="/tmp/stk/sh")
    ours = convert("t9", project).services["web"]
    docker = json.loads((folder / "t9_web.json").read_text())
    assert ours["EndpointSpec"]["Ports"] == docker["EndpointSpec"]["Ports"]
    assert (
        ours["TaskTemplate"]["ContainerSpec"]["Mounts"]
        == docker["TaskTemplate"]["ContainerSpec"]["Mounts"]
    )
