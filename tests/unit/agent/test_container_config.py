"""How a task becomes a container's create call, and what an inspect says back."""

import pytest

from shoal.agent.exec.base import NodeContext, TaskFailed
from shoal.agent.exec.container_config import (
    bind_address,
    container_labels,
    container_name,
    container_status,
    create_body,
    expand_spec,
    has_healthcheck,
    health_status,
    normalize_image,
    port_status,
    stop_timeout,
    volume_create_requests,
)
from shoal.api.objects import Task
from shoal.api.specs import SECOND, ContainerSpec
from shoal.api.types import PortProtocol, PublishMode

NODE = NodeContext(node_id="node9", hostname="box", addr="10.0.0.5")


def task(
    container: dict | None = None, slot: int | None = 1, spec: dict | None = None, **fields
) -> Task:
    return Task.model_validate(
        {
            "ID": "task1",
            "ServiceID": "svc1",
            "Slot": slot,
            "NodeID": "node9",
            "ServiceAnnotations": {"Name": "web", "Labels": {"team": "a"}},
            "Spec": {"ContainerSpec": {"Image": "nginx", **(container or {})}, **(spec or {})},
            **fields,
        }
    )


def body(t: Task, host_ip: str = "") -> dict:
    return create_body(t, expand_spec(t, NODE), host_ip)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("busybox", "busybox:latest"),
        ("busybox:1.36", "busybox:1.36"),
        ("docker.io/library/redis", "redis:latest"),
        ("docker.io/bitnami/redis:7", "bitnami/redis:7"),
        ("index.docker.io/library/alpine:3", "alpine:3"),
        ("instavote/vote", "instavote/vote:latest"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("localhost:5000/app:v2", "localhost:5000/app:v2"),
        ("alpine@sha256:" + "a" * 64, "alpine@sha256:" + "a" * 64),
        ("shoal-test/busybox:latest", "shoal-test/busybox:latest"),
    ],
)
def test_image_names_as_docker_gives_them_to_the_engine(raw, normalized):
    assert normalize_image(raw) == normalized


def test_names_replicated_and_global():
    assert container_name(task()) == "web.1.task1"
    assert container_name(task(slot=None)) == "web.node9.task1"


def test_swarm_labels_override_the_specs():
    t = task(
        {"Labels": {"app": "x", "com.docker.swarm.task.id": "forged"}},
        Labels={"from-task": "y"},
    )
    assert container_labels(t, t.Spec.ContainerSpec) == {
        "app": "x",
        "from-task": "y",
        "com.docker.swarm.task": "",
        "com.docker.swarm.task.id": "task1",
        "com.docker.swarm.task.name": "web.1.task1",
        "com.docker.swarm.node.id": "node9",
        "com.docker.swarm.service.id": "svc1",
        "com.docker.swarm.service.name": "web",
    }


def test_command_replaces_the_entrypoint_and_args_are_its_arguments():
    assert body(task({"Command": ["sh", "-c"], "Args": ["echo hi"]}))["Entrypoint"] == [
        "sh",
        "-c",
    ]
    assert body(task({"Command": ["sh", "-c"], "Args": ["echo hi"]}))["Cmd"] == ["echo hi"]
    only_args = body(task({"Args": ["ping", "docker.com"]}))
    assert "Entrypoint" not in only_args and only_args["Cmd"] == ["ping", "docker.com"]
    neither = body(task())
    assert "Entrypoint" not in neither and "Cmd" not in neither


def test_placeholders_expand_in_env_hostname_and_mounts_only():
    t = task(
        {
            "Env": ["WHO={{.Service.Name}}.{{.Task.Slot}}", "PLAIN"],
            "Hostname": "{{.Node.Hostname}}-{{.Task.Slot}}",
            "Dir": "/srv",
            "Mounts": [{"Type": "volume", "Source": "data-{{.Task.Slot}}", "Target": "/d"}],
        }
    )
    b = body(t)
    assert b["Env"] == ["WHO=web.1", "PLAIN"]
    assert b["Hostname"] == "box-1"
    assert b["WorkingDir"] == "/srv"
    assert b["HostConfig"]["Mounts"] == [{"Type": "volume", "Source": "data-1", "Target": "/d"}]
    assert t.Spec.ContainerSpec.Env[0] == "WHO={{.Service.Name}}.{{.Task.Slot}}", "task untouched"


def test_bad_placeholder_or_missing_image_refuses_the_task():
    with pytest.raises(TaskFailed, match=r"^expanding env failed: "):
        expand_spec(task({"Env": ["X={{.Nope}}"]}), NODE)
    with pytest.raises(TaskFailed, match=r"^expanding hostname failed: "):
        expand_spec(task({"Hostname": "{{.Nope}}"}), NODE)
    with pytest.raises(TaskFailed, match=r"^dockerexec: image required$"):
        expand_spec(task({"Image": ""}), NODE)


def test_host_config_from_spec_and_resources():
    t = task(
        {
            "User": "nobody",
            "Groups": ["audio"],
            "ReadOnly": True,
            "Init": False,
            "StopSignal": "SIGQUIT",
            "TTY": True,
            "OpenStdin": True,
            "Hosts": ["10.0.0.9 db db.local", "bogus"],
            "Isolation": "default",
            "Mounts": [
                {"Type": "bind", "Source": "/srv", "Target": "/srv", "ReadOnly": True},
                {"Type": "tmpfs", "Target": "/run", "TmpfsOptions": {"SizeBytes": 1024}},
            ],
        },
        spec={
            "Resources": {
                "Limits": {"NanoCPUs": SECOND // 2, "MemoryBytes": 1 << 26, "Pids": 50},
                # Reservations are the scheduler's business only, as in Swarm.
                "Reservations": {"MemoryBytes": 1 << 20},
            },
            "LogDriver": {"Name": "json-file", "Options": {"max-size": "1m"}},
        },
    )
    b = body(t)
    assert (b["User"], b["StopSignal"], b["Tty"], b["OpenStdin"]) == (
        "nobody",
        "SIGQUIT",
        True,
        True,
    )
    assert b["HostConfig"] == {
        "NetworkMode": "bridge",
        "Memory": 1 << 26,
        "NanoCpus": SECOND // 2,
        "PidsLimit": 50,
        "Mounts": [
            {"Type": "bind", "Source": "/srv", "Target": "/srv", "ReadOnly": True},
            {"Type": "tmpfs", "Source": "", "Target": "/run", "TmpfsOptions": {"SizeBytes": 1024}},
        ],
        "ReadonlyRootfs": True,
        "Init": False,
        "GroupAdd": ["audio"],
        "ExtraHosts": ["db:10.0.0.9"],
        "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m"}},
    }


def test_healthcheck_passes_through_in_nanoseconds():
    hc = {"Test": ["CMD-SHELL", "true"], "Interval": SECOND, "Retries": 3, "StartPeriod": 0}
    assert body(task({"Healthcheck": hc}))["Healthcheck"] == {
        "Test": ["CMD-SHELL", "true"],
        "Interval": SECOND,
        "Retries": 3,
    }
    assert "Healthcheck" not in body(task())


def test_host_ports_bind_as_published_and_ingress_ports_on_a_free_port():
    t = task(
        Endpoint={
            "Ports": [
                {"TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host"},
                {"TargetPort": 53, "Protocol": "udp", "PublishMode": "host"},
                {"TargetPort": 443, "PublishedPort": 8443, "PublishMode": "ingress"},
                {"TargetPort": 80, "PublishedPort": 9080, "PublishMode": "ingress"},
            ]
        }
    )
    b = body(t, host_ip="127.0.0.3")
    assert b["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "443/tcp": {}}
    # the ingress port reaches the task through the routing mesh, via a port the engine picks;
    # a target already bound in host mode is reached there
    assert b["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "127.0.0.3", "HostPort": "8080"}],
        "53/udp": [{"HostIp": "127.0.0.3", "HostPort": ""}],
        "443/tcp": [{"HostIp": "127.0.0.3", "HostPort": ""}],
    }
    assert "PortBindings" not in body(task())["HostConfig"]


def test_ports_bind_on_a_loopback_node_address_only():
    assert bind_address("127.0.0.2") == "127.0.0.2"
    assert bind_address("::1") == "::1"
    assert bind_address("10.0.0.5") == ""
    assert bind_address("node.example") == ""


def test_volumes_with_a_driver_are_created_first():
    t = task(
        {
            "Mounts": [
                {"Type": "volume", "Source": "plain", "Target": "/a"},
                {
                    "Type": "volume",
                    "Source": "fancy",
                    "Target": "/b",
                    "VolumeOptions": {
                        "Labels": {"x": "1"},
                        "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs"}},
                    },
                },
                {"Type": "bind", "Source": "/srv", "Target": "/c"},
            ]
        }
    )
    assert volume_create_requests(t.Spec.ContainerSpec) == [
        {"Name": "fancy", "Driver": "local", "DriverOpts": {"type": "tmpfs"}, "Labels": {"x": "1"}}
    ]


def test_stop_timeout_in_whole_seconds():
    assert stop_timeout(None) is None
    assert stop_timeout(ContainerSpec()) is None
    assert stop_timeout(ContainerSpec(StopGracePeriod=0)) == 0
    assert stop_timeout(ContainerSpec(StopGracePeriod=10 * SECOND + 1)) == 10


def test_reading_an_inspect():
    running = {
        "Id": "c" * 64,
        "State": {"Running": True, "Pid": 4321, "ExitCode": 0, "Health": {"Status": "starting"}},
        "Config": {"Healthcheck": {"Test": ["CMD", "true"]}},
        "NetworkSettings": {
            "Ports": {
                "80/tcp": [
                    {"HostIp": "0.0.0.0", "HostPort": "8081"},
                    {"HostIp": "::", "HostPort": "8081"},
                ],
                "53/udp": None,  # exposed, not published
            }
        },
    }
    assert container_status(running).model_dump() == {
        "ContainerID": "c" * 64,
        "PID": 4321,
        "ExitCode": 0,
    }
    assert container_status(None).model_dump() == {"ContainerID": "", "PID": 0, "ExitCode": 0}
    # One entry per binding, as Swarm reports them (the transcripts show both).
    assert [
        (p.Protocol, p.TargetPort, p.PublishedPort, p.PublishMode) for p in port_status(running)
    ] == [
        (PortProtocol.TCP, 80, 8081, PublishMode.HOST),
        (PortProtocol.TCP, 80, 8081, PublishMode.HOST),
    ]
    assert port_status(None) == []
    assert has_healthcheck(running) and health_status(running) == "starting"
    assert not has_healthcheck({"Config": {"Healthcheck": {"Test": ["NONE"]}}})
    assert not has_healthcheck({"Config": {}}) and health_status({"State": {}}) == ""
