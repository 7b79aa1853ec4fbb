"""Loading compose files: versions, anchors and merge keys, extension fields, env_file,
several files merged, Docker's warnings, and what is scoped to the stack."""

import io

import pytest

from shoal.compose import ComposeError, ComposeFile, convert, load, read_files


def _load(*texts: str, env: dict | None = None, files: dict | None = None):
    def read(path: str) -> str:
        if files and path in files:
            return files[path]
        raise FileNotFoundError(2, "No such file or directory")

    return load(
        [ComposeFile(f"f{i}.yml", t) for i, t in enumerate(texts)],
        env=env or {},
        working_dir="/app",
        read_file=read,
    )


SEED_002 = """version: "3"
services:
  dataservice:
    image: vividbreeze/docker-tutorial:version1
    deploy:
      replicas: 5
      restart_policy:
        condition: on-failure
    ports:
      - "4000:8080"
"""


def test_seed_002_converts_as_docker_does():
    stack = convert("dataapp", _load(SEED_002))
    assert list(stack.networks) == ["dataapp_default"]
    spec = stack.services["dataservice"]
    assert spec["Name"] == "dataapp_dataservice"
    assert spec["Mode"] == {"Replicated": {"Replicas": 5}}
    assert spec["TaskTemplate"]["RestartPolicy"] == {"Condition": "on-failure"}
    assert spec["EndpointSpec"] == {
        "Ports": [
            {"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": 4000, "PublishMode": "ingress"}
        ],
    }
    assert spec["Labels"] == {
        "com.docker.stack.namespace": "dataapp",
        "com.docker.stack.image": "vividbreeze/docker-tutorial:version1",
    }


@pytest.mark.parametrize("version", ['"3"', '"3.0"', '"3.4"', '"3.9"', None])
def test_versions(version):
    head = f"version: {version}\n" if version else ""
    project = _load(head + "services:\n  web:\n    image: a\n")
    assert list(project.services) == ["web"]


def test_anchors_merge_keys_and_extension_fields():
    project = _load(
        'version: "3.8"\n'
        "x-defaults: &defaults\n  image: base\n  environment: {A: '1'}\n"
        "services:\n"
        "  one:\n    <<: *defaults\n    x-note: anything\n"
        "  two:\n    <<: *defaults\n    image: other\n"
    )
    assert project.services["one"]["image"] == "base"
    assert project.services["two"]["image"] == "other"
    assert project.services["two"]["environment"] == {"A": "1"}


def test_environment_env_file_and_the_shell():
    project = _load(
        'version: "3.8"\nservices:\n  web:\n    image: a\n    env_file: [a.env]\n'
        "    environment:\n      - B=env\n      - FROM_SHELL\n      - NOT_SET\n",
        env={"FROM_SHELL": "sh"},
        files={"/app/a.env": "# c\nA=file\n\nB=file\n"},
    )
    env = convert("s", project).services["web"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert env == ["A=file", "B=env", "FROM_SHELL=sh", "NOT_SET"]


def test_a_missing_env_file():
    with pytest.raises(ComposeError) as error:
        _load('version: "3.8"\nservices:\n  web:\n    image: a\n    env_file: x.env\n')
    assert str(error.value) == "open /app/x.env: no such file or directory"


def test_later_files_override_earlier_ones():
    base = (
        'version: "3.8"\nservices:\n  web:\n    image: a\n    command: [one, two]\n'
        "    environment: {A: '1', B: '1'}\n    ports: ['80:80']\n"
        "    deploy: {replicas: 1, labels: {x: '1'}}\n"
    )
    override = (
        'version: "3.8"\nservices:\n  web:\n    image: b\n    command: [three]\n'
        "    environment: {B: '2'}\n    ports: ['81:81']\n    deploy: {replicas: 3}\n"
        "  db:\n    image: db\n"
    )
    stack = convert("s", _load(base, override))
    web = stack.services["web"]
    container = web["TaskTemplate"]["ContainerSpec"]
    assert container["Image"] == "b"
    assert container["Args"] == ["three"]
    assert container["Env"] == ["A=1", "B=2"]
    assert [p["PublishedPort"] for p in web["EndpointSpec"]["Ports"]] == [80, 81]
    assert web["Mode"] == {"Replicated": {"Replicas": 3}}
    assert web["Labels"]["x"] == "1"
    assert sorted(stack.services) == ["db", "web"]


def test_stdin_is_read_for_dash():
    files = read_files(["-"], io.StringIO("services:\n  web:\n    image: a\n").read)
    assert files[0].filename == "-"
    assert list(load(files, env={}).services) == ["web"]


def test_a_missing_file():
    with pytest.raises(ComposeError) as error:
        read_files(["/nonexistent/compose.yml"], lambda: "")
    assert str(error.value) == "open /nonexistent/compose.yml: no such file or directory"


def test_warnings_for_ignored_options():
    project = _load(
        'version: "3.8"\nservices:\n  web:\n    image: a\n    build: .\n    restart: always\n'
        "    links: [x]\n    container_name: c\n"
    )
    assert project.warnings == [
        "Ignoring unsupported options: build, links, restart\n\n",
        "Ignoring deprecated options:\n\ncontainer_name: Setting the container name is not "
        "supported.\n\n",
    ]
    # restart is still read for the restart policy, as Docker's CLI reads it
    spec = convert("s", project).services["web"]
    assert spec["TaskTemplate"]["RestartPolicy"] == {"Condition": "any"}


def test_external_and_named_objects_are_not_scoped():
    stack = convert(
        "s",
        _load(
            'version: "3.8"\nservices:\n  web:\n    image: a\n    networks: [ext, named, plain]\n'
            "    volumes: [vol:/v, extvol:/e]\n"
            "networks:\n  ext:\n    external: true\n  named:\n    name: global-net\n  plain: {}\n"
            "volumes:\n  vol: {}\n  extvol:\n    external:\n      name: real-volume\n"
        ),
    )
    assert stack.external_networks == ["ext"]
    assert sorted(stack.networks) == ["global-net", "s_plain"]
    targets = [n["Target"] for n in stack.services["web"]["TaskTemplate"]["Networks"]]
    assert targets == ["ext", "global-net", "s_plain"]
    mounts = stack.services["web"]["TaskTemplate"]["ContainerSpec"]["Mounts"]
    assert [m["Source"] for m in mounts] == ["s_vol", "real-volume"]


def test_process_runtime_extension():
    stack = convert(
        "s",
        _load(
            'version: "3.8"\nx-shoal-runtime: process\nservices:\n'
            "  web:\n    image: python3\n    command: -m http.server\n"
            "  other:\n    image: sleep\n    x-shoal-runtime: container\n"
        ),
    )
    web = stack.services["web"]["TaskTemplate"]
    assert web["Runtime"] == "process"
    assert web["ContainerSpec"]["Image"] == "python3"
    assert web["ContainerSpec"]["Args"] == ["-m", "http.server"]
    assert stack.services["other"]["TaskTemplate"]["Runtime"] == "container"


def test_jobs_and_global_modes():
    stack = convert(
        "s",
        _load(
            'version: "3.8"\nservices:\n'
            "  a:\n    image: a\n    deploy: {mode: global-job}\n"
            "  b:\n    image: b\n    deploy: {mode: global}\n"
        ),
    )
    assert stack.services["a"]["Mode"] == {"GlobalJob": {}}
    assert stack.services["b"]["Mode"] == {"Global": {}}


def test_replicas_with_global_mode():
    with pytest.raises(ComposeError) as error:
        convert(
            "s",
            _load(
                'version: "3.8"\nservices:\n  a:\n    image: a\n    deploy: {mode: global, replicas: 2}\n'
            ),
        )
    assert str(error.value) == (
        "service a: replicas can only be used with replicated or replicated-job mode"
    )
