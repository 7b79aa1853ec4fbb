"""The short forms a compose file may use, read into their long forms as Docker's loader reads
them: ports (``"4000:8080/udp"``), volumes (``"data:/var/lib/x:ro"``), environment and labels
as lists, extra hosts as a mapping, commands as a shell string."""

import shlex
from typing import Any

from shoal.compose.errors import ComposeError


def _port_range(text: str, what: str, spec: str) -> list[int]:
    start, dash, end = text.partition("-")
    try:
        first = int(start)
        last = int(end) if dash else first
    except ValueError:
        raise ComposeError(f"Invalid {what}port: {text}") from None
    if not 0 <= first <= 65535 or not 0 <= last <= 65535 or last < first:
        raise ComposeError(f"Invalid {what}port: {text}")
    return list(range(first, last + 1))


def ports(value: Any) -> list[dict[str, Any]]:
    """One short-syntax port (``[ip:][published:]target[/protocol]``, ranges allowed) as
    long-syntax ports."""
    spec = str(value)
    body, slash, protocol = spec.partition("/")
    protocol = protocol if slash else "tcp"
    parts = body.rsplit(":", 2)
    if len(parts) == 3:
        _ip, published, target = parts
    elif len(parts) == 2:
        published, target = parts
    else:
        published, target = "", parts[0]
    targets = _port_range(target, "container", spec)
    if not published:
        return [
            {"mode": "ingress", "target": t, "published": 0, "protocol": protocol} for t in targets
        ]
    publisheds = _port_range(published, "host", spec)
    if len(publisheds) != len(targets) and len(publisheds) != 1:
        raise ComposeError(
            f"Invalid ranges specified for container and host Ports: {target} and {published}"
        )
    if len(publisheds) == 1 and len(targets) > 1:
        publisheds = publisheds * len(targets)
    return [
        {"mode": "ingress", "target": t, "published": p, "protocol": protocol}
        for p, t in zip(publisheds, targets, strict=True)
    ]


def port_long(value: dict[str, Any]) -> dict[str, Any]:
    return {
        "mode": value.get("mode") or "ingress",
        "target": value.get("target") or 0,
        "published": value.get("published") or 0,
        "protocol": value.get("protocol") or "tcp",
    }


_PROPAGATION = {"private", "rprivate", "shared", "rshared", "slave", "rslave"}
_CONSISTENCY = {"consistent", "cached", "delegated"}


def _is_path(source: str) -> bool:
    return source[:1] in (".", "/", "~")


def volume(spec: str) -> dict[str, Any]:
    """``[source:]target[:mode]`` as a long-syntax volume."""
    parts = spec.split(":")
    if not spec or len(parts) > 3 or any(p == "" for p in parts):
        raise ComposeError(f"invalid spec: {spec}: empty section between colons")
    if len(parts) == 1:
        return {"type": "volume", "target": parts[0]}
    source, target = parts[0], parts[1]
    result: dict[str, Any] = {
        "type": "bind" if _is_path(source) else "volume",
        "source": source,
        "target": target,
    }
    for option in parts[2].split(",") if len(parts) == 3 else []:
        if option == "ro":
            result["read_only"] = True
        elif option == "nocopy":
            result["volume"] = {"nocopy": True}
        elif option in _PROPAGATION:
            result["bind"] = {"propagation": option}
        elif option in _CONSISTENCY:
            result["consistency"] = option
    return result


def mapping(value: Any, allow_none: bool) -> dict[str, str | None]:
    """A list of ``KEY=VALUE`` (or ``KEY``) or a mapping, as a mapping of strings; numbers
    written as YAML numbers become their text."""
    result: dict[str, str | None] = {}
    if isinstance(value, list):
        for item in value:
            key, eq, val = str(item).partition("=")
            result[key] = val if eq else (None if allow_none else "")
        return result
    for key, val in (value or {}).items():
        if val is None:
            result[str(key)] = None if allow_none else ""
        elif isinstance(val, bool):
            result[str(key)] = "true" if val else "false"
        else:
            result[str(key)] = str(val)
    return result


def command(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


def extra_hosts(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [f"{host}:{ip}" for host, ip in value.items()]
    return [str(v) for v in value or []]
