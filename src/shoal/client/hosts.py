"""Which daemon a client talks to: ``-H``, then ``SHOAL_HOST`` (like ``DOCKER_HOST``), then the
cluster ``shoal local up`` started, then the default socket."""

import json
import os

from shoal import paths


def configured_host() -> str | None:
    try:
        data = json.loads((paths.config_dir() / "config.json").read_text())
    except (OSError, ValueError):
        return None
    host = data.get("host") if isinstance(data, dict) else None
    return host if isinstance(host, str) and host else None


def resolve_host(flag: str | None) -> str:
    """-H, then SHOAL_HOST (like DOCKER_HOST), then what `shoal local up` chose, then the
    default socket."""
    return (
        flag
        or os.environ.get("SHOAL_HOST")
        or configured_host()
        or f"unix://{paths.default_socket()}"
    )
