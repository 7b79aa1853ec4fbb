"""The parts of ``stack deploy`` that need no daemon: when a service's spec counts as
unchanged (so that a re-deploy sends nothing), the image a deploy resolves to, and
``--detach=false`` reaching the one command whose --detach defaults to true."""

from shoal.cli.main import normalize_bool_flags
from shoal.cli.stack_deploy import _tag_image, same_spec
from shoal.compose import ComposeFile, convert, load

FILE = """version: "3.8"
services:
  web:
    image: busybox
    command: sleep 300
    environment: [A=1]
    deploy: {replicas: 2}
"""


def _spec(text: str = FILE) -> dict:
    return convert("app", load([ComposeFile("f.yml", text)], env={}, working_dir="/")).services[
        "web"
    ]


def _as_stored(spec: dict) -> dict:
    """What a daemon hands back: IDs for names, empty values filled in, another key order."""
    stored = {
        "Mode": spec["Mode"],
        "Name": spec["Name"],
        "Labels": spec["Labels"],
        "TaskTemplate": {
            **spec["TaskTemplate"],
            "Runtime": "container",
            "ForceUpdate": 0,
            "Placement": {},
            "Resources": {"Limits": {}, "Reservations": {}},
        },
        "EndpointSpec": spec["EndpointSpec"],
    }
    return stored


def test_the_same_file_is_the_same_spec():
    assert same_spec(_as_stored(_spec()), _spec())


def test_what_the_daemon_fills_in_is_no_change():
    """The daemon stores a container's isolation "default", an update config's failure action
    and order, an endpoint's mode "vip" where the file said nothing."""
    file = FILE.replace("deploy: {replicas: 2}", "deploy: {replicas: 2, update_config: {}}")
    stored = _as_stored(_spec(file))
    stored["TaskTemplate"]["ContainerSpec"] = {
        **stored["TaskTemplate"]["ContainerSpec"],
        "Isolation": "default",
    }
    stored["UpdateConfig"] = {"FailureAction": "pause", "Order": "stop-first"}
    assert same_spec(stored, _spec(file))
    stored["UpdateConfig"]["Order"] = "start-first"
    assert not same_spec(stored, _spec(file))


def test_a_changed_value_is_a_changed_spec():
    assert not same_spec(_as_stored(_spec()), _spec(FILE.replace("A=1", "A=2")))
    assert not same_spec(_as_stored(_spec()), _spec(FILE.replace("replicas: 2", "replicas: 3")))


def test_images_are_tagged_as_resolving_them_would():
    assert _tag_image("busybox") == "busybox:latest"
    assert _tag_image("registry:5000/busybox") == "registry:5000/busybox:latest"
    assert _tag_image("busybox:1.36") == "busybox:1.36"
    assert _tag_image("busybox@sha256:abc") == "busybox@sha256:abc"


def test_detach_false_reaches_stack_deploy_only():
    assert normalize_bool_flags(["stack", "deploy", "--detach=false", "-c", "f", "app"]) == [
        "stack",
        "deploy",
        "--no-detach",
        "-c",
        "f",
        "app",
    ]
    assert normalize_bool_flags(["-H", "unix:///s", "stack", "up", "-d=false", "a"]) == [
        "-H",
        "unix:///s",
        "stack",
        "up",
        "--no-detach",
        "a",
    ]
    assert normalize_bool_flags(["service", "create", "--detach=false", "busybox"]) == [
        "service",
        "create",
        "busybox",
    ]
