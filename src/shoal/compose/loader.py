"""Compose files read as Docker's ``stack deploy`` reads them: each file parsed (YAML anchors
and merge keys as YAML has them), checked for refused options, interpolated, validated, put in
its long form; then later files merged over earlier ones."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from shoal.compose import options, shorthand
from shoal.compose.errors import ComposeError
from shoal.compose.interpolation import interpolate
from shoal.compose.merge import merge_projects
from shoal.compose.project import ComposeFile, Project
from shoal.compose.schema import validate

SUPPORTED_VERSIONS = {f"3.{n}" for n in range(10)}
DEFAULT_VERSION = "3.9"  # what Docker 20.10 takes a file without a version for


ReadFile = Callable[[str], str]


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _string_keys(value: Any, where: str) -> Any:
    """YAML allows any key; Docker's loader allows strings only."""
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                location = "at top level" if not where else f"in {where}"
                raise ComposeError(f"Non-string key {location}: {_go_value(key)}")
            result[key] = _string_keys(item, f"{where}.{key}" if where else key)
        return result
    if isinstance(value, list):
        return [_string_keys(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _go_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse(text: str) -> dict[str, Any]:
    """A file's text as a mapping, or Docker's error."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ComposeError(f"yaml: {_yaml_reason(error)}") from None
    if not isinstance(data, dict):
        raise ComposeError("top-level object must be a mapping")
    return _string_keys(data, "")


# PyYAML's words for the mistakes people make most, as Go's YAML parser (Docker's) words them.
_GO_YAML_PROBLEMS = {
    "mapping values are not allowed here": "mapping values are not allowed in this context",
    "found character '\\t' that cannot start any token": (
        "found character that cannot start any token"
    ),
}


def _yaml_reason(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    problem = _GO_YAML_PROBLEMS.get(problem, problem)
    if mark is not None:
        return f"line {mark.line + 1}: {problem}"
    return problem


def file_version(config: dict[str, Any]) -> str:
    if "version" not in config:
        return DEFAULT_VERSION
    value = config["version"]
    text = _go_value(value) if not isinstance(value, float) else repr(value)
    return DEFAULT_VERSION if text in ("", "3") else text


def _resolve_path(working_dir: str, path: str, env: Mapping[str, str]) -> str:
    if path.startswith("~"):
        path = env.get("HOME", "~") + path[1:]
    return posixpath.normpath(posixpath.join(working_dir, path))


def _env_file_lines(text: str, env: Mapping[str, str], path: str) -> dict[str, str]:
    """opts.ParseEnvFile: KEY=VALUE lines, ``#`` comments, a bare KEY taken from the
    environment (and left out when it is not set there)."""
    result: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if any(c.isspace() for c in key):
            raise ComposeError(f"variable '{key}' contains whitespaces")
        if not key:
            raise ComposeError(f"no variable name on line '{raw}'")
        if eq:
            result[key] = value
        elif key in env:
            result[key] = env[key]
    return result


def _service(
    name: str,
    raw: dict[str, Any],
    working_dir: str,
    env: Mapping[str, str],
    read_file: ReadFile,
) -> dict[str, Any]:
    service = dict(raw)
    environment: dict[str, str | None] = {}
    env_files = raw.get("env_file")
    for path in [env_files] if isinstance(env_files, str) else env_files or []:
        full = _resolve_path(working_dir, path, env)
        try:
            text = read_file(full)
        except OSError as error:
            raise ComposeError(f"open {full}: {_os_reason(error)}") from None
        environment.update(_env_file_lines(text, env, full))
    environment.update(shorthand.mapping(raw.get("environment"), allow_none=True))
    for key, value in list(environment.items()):
        if value is None and key in env:
            environment[key] = env[key]
    service.pop("env_file", None)
    service["environment"] = environment
    service["labels"] = shorthand.mapping(raw.get("labels"), allow_none=False)
    service["command"] = shorthand.command(raw.get("command"))
    service["entrypoint"] = shorthand.command(raw.get("entrypoint"))
    service["extra_hosts"] = shorthand.extra_hosts(raw.get("extra_hosts"))
    ports: list[dict[str, Any]] = []
    for port in raw.get("ports") or []:
        if isinstance(port, dict):
            ports.append(shorthand.port_long(port))
        else:
            ports.extend(shorthand.ports(port))
    service["ports"] = ports
    volumes = []
    for volume in raw.get("volumes") or []:
        long = dict(volume) if isinstance(volume, dict) else shorthand.volume(volume)
        if long.get("type") == "bind" and long.get("source"):
            long["source"] = _resolve_path(working_dir, long["source"], env)
        volumes.append(long)
    service["volumes"] = volumes
    for kind in ("secrets", "configs"):
        service[kind] = [
            {"source": ref} if isinstance(ref, str) else dict(ref) for ref in raw.get(kind) or []
        ]
    networks = raw.get("networks")
    if isinstance(networks, list):
        networks = dict.fromkeys(networks)
    service["networks"] = dict(networks or {})
    deploy = dict(raw.get("deploy") or {})
    deploy["labels"] = shorthand.mapping(deploy.get("labels"), allow_none=False)
    service["deploy"] = deploy
    health = raw.get("healthcheck")
    if health is not None:
        health = dict(health)
        if isinstance(health.get("test"), str):
            health["test"] = ["CMD-SHELL", health["test"]]
        service["healthcheck"] = health
    for key in ("dns", "dns_search", "tmpfs"):
        if isinstance(raw.get(key), str):
            service[key] = [raw[key]]
    if "sysctls" in raw:
        service["sysctls"] = shorthand.mapping(raw["sysctls"], allow_none=False)
    service["name"] = name
    return service


def _os_reason(error: OSError) -> str:
    return (error.strerror or str(error)).lower()


def _objects(
    raw: dict[str, Any] | None, working_dir: str, env: Mapping[str, str], with_file: bool
) -> dict[str, dict[str, Any]]:
    result = {}
    for name, value in (raw or {}).items():
        obj = dict(value or {})
        if "labels" in obj:
            obj["labels"] = shorthand.mapping(obj["labels"], allow_none=False)
        external = obj.get("external")
        if isinstance(external, dict):
            obj["external"] = True
            if external.get("name"):
                obj["name"] = external["name"]
        if obj.get("external") and not obj.get("name"):
            obj["name"] = name  # an external object is found by its own name, unscoped
        if with_file and obj.get("file"):
            obj["file"] = _resolve_path(working_dir, obj["file"], env)
        result[name] = obj
    return result


def _check_objects(project: Project) -> None:
    """Docker's loader refuses an external object that says more than its name."""
    for kind, objects in (
        ("networks", project.networks),
        ("volumes", project.volumes),
        ("secrets", project.secrets),
        ("configs", project.configs),
    ):
        for name, obj in objects.items():
            if not obj.get("external"):
                continue
            for key in ("driver", "driver_opts", "labels", "ipam", "internal", "attachable"):
                if obj.get(key) not in (None, {}, False):
                    kind_word = kind[:-1]
                    raise ComposeError(
                        f'conflicting parameters "external" and "{key}" specified for '
                        f'{kind_word} "{name}"'
                    )


def load_file(
    config: dict[str, Any],
    working_dir: str,
    env: Mapping[str, str],
    read_file: ReadFile = _read_text,
    version: str = DEFAULT_VERSION,
) -> Project:
    """One parsed file, checked and in long form (its version already checked)."""
    options.check_forbidden(config)
    config = interpolate(config, env, "")
    validate(config, version)
    project = Project(
        services={
            name: _service(name, raw, working_dir, env, read_file)
            for name, raw in sorted((config.get("services") or {}).items())
        },
        networks=_objects(config.get("networks"), working_dir, env, with_file=False),
        volumes=_objects(config.get("volumes"), working_dir, env, with_file=False),
        secrets=_objects(config.get("secrets"), working_dir, env, with_file=True),
        configs=_objects(config.get("configs"), working_dir, env, with_file=True),
        extensions={k: v for k, v in config.items() if k.startswith("x-")},
    )
    _check_objects(project)
    return project


def load(
    files: list[ComposeFile],
    env: Mapping[str, str] | None = None,
    working_dir: str | None = None,
    read_file: ReadFile = _read_text,
) -> Project:
    """The files as one project, later ones merged over earlier ones. Relative paths are
    from ``working_dir`` (Docker: the first file's directory, or the current one for stdin)."""
    if not files:
        raise ComposeError("Please specify a Compose file (with --compose-file).")
    env = dict(os.environ) if env is None else env
    if working_dir is None:
        first = files[0].filename
        working_dir = os.getcwd() if first == "-" else posixpath.dirname(os.path.abspath(first))
    configs = [parse(f.text) for f in files]
    version = ""
    for config in configs:
        this = file_version(config)
        if not version:
            version = this
        elif this != version:
            raise ComposeError(
                f"version mismatched between two composefiles : {version} and {this}"
            )
    if version not in SUPPORTED_VERSIONS:
        raise ComposeError(f"unsupported Compose file version: {version}")
    projects = [load_file(c, working_dir, env, read_file, version) for c in configs]
    project = merge_projects(projects)
    project.warnings = options.warnings(configs)
    return project


def read_files(paths: list[str], stdin: Callable[[], str]) -> list[ComposeFile]:
    """The files named on the command line (``-`` is stdin), read as Docker reads them."""
    files = []
    for path in paths:
        if path == "-":
            files.append(ComposeFile("-", stdin()))
            continue
        try:
            files.append(ComposeFile(path, _read_text(path)))
        except OSError as error:
            raise ComposeError(f"open {path}: {_os_reason(error)}") from None
    return files
