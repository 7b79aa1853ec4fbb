"""After interpolation Docker turns some strings back into numbers and booleans, so that
``replicas: ${REPLICAS}`` works: the paths below, as its loader (20.10) lists them. Only a
string that a variable changed is cast (``replicas: "2"`` stays a string, for the schema to
refuse), and one that does not read as its type is an error in Go's words."""

import re
from typing import Any

from shoal.golang import quote

_INT = "int"
_BOOL = "bool"
_FLOAT = "float"

_SERVICE = {
    "configs.[].mode": _INT,
    "secrets.[].mode": _INT,
    "healthcheck.retries": _INT,
    "healthcheck.disable": _BOOL,
    "deploy.replicas": _INT,
    "deploy.update_config.parallelism": _INT,
    "deploy.update_config.max_failure_ratio": _FLOAT,
    "deploy.rollback_config.parallelism": _INT,
    "deploy.rollback_config.max_failure_ratio": _FLOAT,
    "deploy.restart_policy.max_attempts": _INT,
    "deploy.placement.max_replicas_per_node": _INT,
    "ports.[].target": _INT,
    "ports.[].published": _INT,
    "ulimits.*": _INT,
    "ulimits.*.hard": _INT,
    "ulimits.*.soft": _INT,
    "privileged": _BOOL,
    "read_only": _BOOL,
    "stdin_open": _BOOL,
    "tty": _BOOL,
    "volumes.[].read_only": _BOOL,
    "volumes.[].volume.nocopy": _BOOL,
}
_PATHS = {f"services.*.{k}": v for k, v in _SERVICE.items()} | {
    "networks.*.external": _BOOL,
    "networks.*.internal": _BOOL,
    "networks.*.attachable": _BOOL,
    "volumes.*.external": _BOOL,
    "secrets.*.external": _BOOL,
    "configs.*.external": _BOOL,
}
_TRUE = {"y", "yes", "true", "on"}
_FALSE = {"n", "no", "false", "off"}


def _pattern(path: str) -> re.Pattern[str]:
    parts = [r"[^.]+" if p == "*" else re.escape(p) for p in path.split(".")]
    return re.compile("^" + r"\.".join(parts) + "$")


_COMPILED = [(_pattern(p), kind) for p, kind in _PATHS.items()]


class CastError(Exception):
    pass


def cast(value: str, kind: str) -> Any:
    """The value as its type; CastError with Go's text otherwise."""
    if kind == _INT:
        if re.fullmatch(r"[+-]?\d+", value):
            return int(value)
        raise CastError(f"strconv.Atoi: parsing {quote(value)}: invalid syntax")
    if kind == _FLOAT:
        try:
            return float(value)
        except ValueError:
            raise CastError(f"strconv.ParseFloat: parsing {quote(value)}: invalid syntax") from None
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise CastError(f"invalid boolean: {value}")


def caster_for(path: str) -> str | None:
    """The type a string at this path is read as (``services.web.ports.[].target``)."""
    for pattern, kind in _COMPILED:
        if pattern.match(path):
            return kind
    return None
