"""The daemon's settings (``shoal daemon`` flags)."""

import socket as _socket
from dataclasses import dataclass, field
from pathlib import Path

from shoal import paths


@dataclass
class DaemonConfig:
    state_dir: Path = field(default_factory=paths.default_state_dir)
    socket: Path = field(default_factory=paths.default_socket)
    # Where the swarm's RPC server listens by default (``swarm init/join --listen-addr``
    # override it). A specific address here is also the default advertise address, so that
    # several daemons on one machine (127.0.0.1, 127.0.0.2...) each advertise their own.
    listen_addr: str = f"0.0.0.0:{paths.DEFAULT_PORT}"
    hostname: str = field(default_factory=_socket.gethostname)
    labels: dict[str, str] = field(default_factory=dict)
    # Which runtimes this node offers: "process" always; "container" when it has a Docker
    # Engine (the docker runtime).
    runtimes: list[str] = field(default_factory=lambda: ["process"])
