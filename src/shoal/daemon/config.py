"""The daemon's settings (``shoal daemon`` flags)."""

import socket as _socket
from dataclasses import dataclass, field
from pathlib import Path

from shoal import paths
from shoal.engineapi.listeners import Listener, TLSSettings, parse_host
from shoal.network.datapath import DataPathChoice


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
    # Which runtimes this node may offer: "process" always; "container" only while its
    # Docker Engine answers.
    runtimes: list[str] = field(default_factory=lambda: ["process", "container"])
    # The Docker Engine for container tasks ("unix:///path", "tcp://host:port"); None means
    # $DOCKER_HOST or Docker's own socket, "none" no engine at all.
    engine_host: str | None = None
    # The routing mesh: "auto" (nftables where the kernel and rights allow, else userspace),
    # or one forced; and the addresses published ports answer on (None: the address of a
    # specific --listen-addr, else every address of the host).
    mesh_data_path: DataPathChoice = "auto"
    mesh_addresses: list[str] | None = None
    # Overlay networks: built where the node can (root, iproute2, nftables), unless turned
    # off; the node's own VXLAN port where it shares a host with other nodes (None: the
    # cluster's, swarm init --data-path-port).
    overlay: bool = True
    data_path_port: int | None = None
    # While this node manages: seconds a node whose connection closed has to reconnect
    # before it is marked down (None: the dispatcher's default).
    reconnect_grace: float | None = None

    # Where the API listens besides (or, without --socket, instead of) the socket: dockerd's
    # -H values; and TLS for its TCP listeners (--tls, --tlsverify).
    hosts: list[str] = field(default_factory=list)
    socket_given: bool = False
    api_tls: TLSSettings | None = None
    # Where Prometheus metrics are served (dockerd's --metrics-addr, HOST:PORT); None: not.
    metrics_addr: str | None = None
    # The web dashboard's HOST:PORT (--dashboard-addr); None: no dashboard.
    dashboard_addr: str | None = None

    def api_listeners(self) -> list[Listener]:
        """Every -H, and the socket where no -H is given or --socket is."""
        tls = self.api_tls is not None
        listeners = [parse_host(h, tls, self.socket) for h in self.hosts]
        if not listeners or self.socket_given:
            listeners.insert(0, Listener(path=self.socket))
        return list(dict.fromkeys(listeners))

    @property
    def uses_engine(self) -> bool:
        return "container" in self.runtimes and (self.engine_host or "").lower() != "none"
