"""Bad compose files and the message Docker 20.10's ``stack deploy`` prints for each (every
one checked on the reference swarm), before anything is sent to a daemon."""

import pytest

from shoal.compose import ComposeError, ComposeFile, convert, load


def _service(extra: str, version: str = '"3.8"') -> str:
    return f"version: {version}\nservices:\n  web:\n    image: busybox\n{extra}\n"


CASES = [
    # unknown keys
    (_service("    foo: bar"), "services.web Additional property foo is not allowed"),
    (
        'version: "3.8"\nservice:\n  web:\n    image: a\n',
        "(root) Additional property service is not allowed",
    ),
    # wrong types
    (
        _service("    deploy:\n      replicas: abc"),
        "services.web.deploy.replicas must be a integer",
    ),
    (
        _service('    deploy:\n      replicas: "2"'),
        "services.web.deploy.replicas must be a integer",
    ),
    (_service("    command: 3"), "services.web.command must be a string"),
    (_service("    ports: [{target: x}]"), "services.web.ports.0.target must be a integer"),
    (_service("    environment: 3"), "services.web.environment must be a mapping"),
    (_service("    deploy: 3"), "services.web.deploy must be a mapping or null"),
    (_service("    stop_grace_period: 5"), "services.web.stop_grace_period must be a string"),
    (_service("    ports: [true]"), "services.web.ports.0 must be a number"),
    (_service("    networks: 3"), "services.web.networks must be a list"),
    (_service('    init: "yes"'), "services.web.init must be a boolean"),
    (
        _service("    healthcheck: {interval: abc}"),
        "services.web.healthcheck.interval Does not match format 'duration'",
    ),
    (_service('    ports: ["abc"]'), "services.web.ports.0 Does not match format 'ports'"),
    (_service("    volumes: [{source: a}]"), "services.web.volumes.0 type is required"),
    (
        _service("    deploy: {update_config: {order: x}}"),
        "services.web.deploy.update_config.order services.web.deploy.update_config.order must "
        'be one of the following: "start-first", "stop-first"',
    ),
    ("version: 3.8\nservices:\n  web:\n    image: a\n", "version must be a string"),
    ("[1, 2]\n", "top-level object must be a mapping"),
    ("", "top-level object must be a mapping"),
    # missing variables
    (
        'version: "3.8"\nservices:\n  web:\n    image: ${IMG?image is required}\n',
        'invalid interpolation format for services.web.image: "required variable IMG is '
        'missing a value: image is required"; you may need to escape any $ with another $',
    ),
    (
        'version: "3.8"\nservices:\n  web:\n    image: ${IMG:?}\n',
        'invalid interpolation format for services.web.image: "required variable IMG is '
        'missing a value: "; you may need to escape any $ with another $',
    ),
    (
        'version: "3.8"\nservices:\n  web:\n    image: ${IMG\n',
        'invalid interpolation format for services.web.image: "${IMG"; you may need to '
        "escape any $ with another $",
    ),
    # forbidden options
    (
        _service("    cpu_shares: 3"),
        "Compose file contains unsupported options:\n\ncpu_shares: Set resource limits using "
        "deploy.resources\n",
    ),
    (
        _service("    extends: {service: x}"),
        "Compose file contains unsupported options:\n\nextends: Support for `extends` is not "
        "implemented yet.\n",
    ),
    # keys a version did not have yet (each checked on Docker 20.10)
    (
        _service("    secrets: [a]", '"3.0"'),
        "services.web Additional property secrets is not allowed",
    ),
    (_service("    init: true", '"3.6"'), "services.web Additional property init is not allowed"),
    (_service("    x-foo: 1", '"3.6"'), "services.web Additional property x-foo is not allowed"),
    (
        _service("    ports: [{target: 80}]", '"3.1"'),
        "services.web.ports.0 must be a string or number",
    ),
    (
        _service("    deploy: {rollback_config: {parallelism: 1}}", '"3.6"'),
        "services.web.deploy Additional property rollback_config is not allowed",
    ),
    (
        _service("    deploy: {placement: {max_replicas_per_node: 1}}", '"3.7"'),
        "services.web.deploy.placement Additional property max_replicas_per_node is not allowed",
    ),
    (
        'version: "3.3"\nx-a: 1\nservices:\n  web:\n    image: a\n',
        "(root) Additional property x-a is not allowed",
    ),
    # YAML itself (Go's parser's words; other YAML errors keep PyYAML's)
    (
        'version: "3.8"\nservices:\n  web: image: a\n',
        "yaml: line 3: mapping values are not allowed in this context",
    ),
    (
        'version: "3.8"\nservices:\n  web:\n\timage: a\n',
        "yaml: line 4: found character that cannot start any token",
    ),
    # shoal's own extension
    (
        _service("    x-shoal-runtime: proces"),
        'service web: x-shoal-runtime must be "container" or "process", not \'proces\'',
    ),
    # versions
    (_service("", '"2"'), "unsupported Compose file version: 2"),
    (_service("", '"4.0"'), "unsupported Compose file version: 4.0"),
    # found while converting
    (_service("    deploy: {mode: foo}"), "service web: Unknown mode: foo"),
    (_service("    secrets: [nosuch]"), 'service web: undefined secret "nosuch"'),
    (_service("    networks: [nosuch]"), 'service web: undefined network "nosuch"'),
    (
        'version: "3.8"\nservices:\n  web:\n    build: .\n',
        "invalid image reference for service web: no image specified",
    ),
]


@pytest.mark.parametrize(("text", "message"), CASES)
def test_docker_message(text, message):
    with pytest.raises(ComposeError) as error:
        project = load([ComposeFile("docker-compose.yml", text)], env={}, working_dir="/")
        convert("t1", project)
    assert str(error.value) == message


def test_files_of_different_versions():
    with pytest.raises(ComposeError) as error:
        load(
            [
                ComposeFile("a.yml", 'version: "3.8"\nservices: {}\n'),
                ComposeFile("b.yml", 'version: "3.7"\nservices: {}\n'),
            ],
            env={},
            working_dir="/",
        )
    assert str(error.value) == "version mismatched between two composefiles : 3.8 and 3.7"
