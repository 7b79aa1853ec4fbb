"""Servers, channels and caller identity for node-to-node gRPC."""

from dataclasses import dataclass

import grpc
import grpc.aio

from shoal.ca.join_ca import JOIN_SERVER_NAME, JoinMaterial

# Large enough for a big assignment set; snapshots are streamed in chunks rather than sent
# whole, so no single message approaches it.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.enable_retries", 0),
]
_SERVER_OPTIONS = [
    *_OPTIONS,
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.so_reuseport", 0),
]

# Before a node has a certificate (and always, while TLS is switched off), the caller names
# itself in this metadata key; with mutual TLS the certificate names the caller instead.
NODE_ID_METADATA = "x-shoal-node-id"


@dataclass(frozen=True)
class TLSMaterial:
    """A node's certificate and key, and the root CA certificate(s) it trusts (all PEM)."""

    cert: bytes
    key: bytes
    ca: bytes


@dataclass(frozen=True)
class PeerIdentity:
    node_id: str
    role: str | None = None
    cluster_id: str | None = None
    # True when the identity comes from a verified certificate, not from the caller's word.
    verified: bool = False


MANAGER_SERVER_NAME = "swarm-manager"


class Transport:
    """Builds gRPC servers and channels for one node. ``tls`` None means in the clear.

    With TLS, a server requires a client certificate from every caller (see
    shoal.ca.join_ca for how a joining node without one gets through) and an ``authorizer``
    interceptor decides per RPC; a channel presents the node's certificate and accepts only a
    server whose certificate names it a manager under one of the trusted roots.

    The node's certificate changes (renewal, a new role, a root rotation): ``update`` swaps it
    in. Servers pick it up on their next handshake; channels are built with the material of
    their time, so holders of long-lived channels rebuild them when ``generation`` moves."""

    def __init__(
        self,
        tls: TLSMaterial | None = None,
        node_id: str = "",
        join: JoinMaterial | None = None,
    ) -> None:
        self.tls = tls
        self.node_id = node_id
        self.join = join
        self.generation = 0
        self._served_generation = -1

    def update(self, tls: TLSMaterial) -> None:
        self.tls = tls
        self.generation += 1

    def server(self, authorizer: grpc.aio.ServerInterceptor | None = None) -> grpc.aio.Server:
        """A server; with TLS, ``authorizer`` checks every call."""
        interceptors = [authorizer] if authorizer is not None and self.tls is not None else None
        return grpc.aio.server(options=_SERVER_OPTIONS, interceptors=interceptors)

    def _server_certificates(self) -> grpc.ServerCertificateConfiguration:
        assert self.tls is not None
        pairs = [(self.tls.key, self.tls.cert)]
        roots = self.tls.ca
        if self.join is not None:
            # Chosen by the server name a client asks for (SNI): swarm-join for joiners.
            pairs.append((self.join.key, self.join.cert))
            roots = roots + self.join.ca_cert
        self._served_generation = self.generation
        return grpc.ssl_server_certificate_configuration(pairs, root_certificates=roots)

    def _fetch_server_certificates(self) -> grpc.ServerCertificateConfiguration | None:
        # Called by gRPC before each handshake: None keeps what it has.
        if self._served_generation == self.generation:
            return None
        return self._server_certificates()

    def add_port(self, server: grpc.aio.Server, addr: str) -> int:
        """Listen on ``addr``; returns the bound port (useful with port 0)."""
        if self.tls is None:
            return server.add_insecure_port(addr)
        creds = grpc.dynamic_ssl_server_credentials(
            self._server_certificates(),
            self._fetch_server_certificates,
            require_client_authentication=True,
        )
        return server.add_secure_port(addr, creds)

    def channel(
        self, addr: str, options: tuple[tuple[str, int | str], ...] = ()
    ) -> grpc.aio.Channel:
        """A channel to ``addr``; ``options`` are gRPC options to add to the defaults."""
        if self.tls is None:
            return grpc.aio.insecure_channel(addr, options=[*_OPTIONS, *options])
        creds, all_options = self._secure(options)
        return grpc.aio.secure_channel(addr, creds, options=all_options)

    def blocking_channel(
        self, addr: str, options: tuple[tuple[str, int | str], ...] = ()
    ) -> grpc.Channel:
        """The same channel as ``channel``, same credentials, for gRPC's blocking API: for a
        thread of its own, that has no event loop and must not wait on the node's."""
        if self.tls is None:
            return grpc.insecure_channel(addr, options=[*_OPTIONS, *options])
        creds, all_options = self._secure(options)
        return grpc.secure_channel(addr, creds, options=all_options)

    def _secure(
        self, options: tuple[tuple[str, int | str], ...]
    ) -> tuple[grpc.ChannelCredentials, list[tuple[str, int | str]]]:
        """Mutual TLS with this node's certificate, to a server that proves it is a manager."""
        assert self.tls is not None
        creds = grpc.ssl_channel_credentials(
            root_certificates=self.tls.ca,
            private_key=self.tls.key,
            certificate_chain=self.tls.cert,
        )
        all_options = [
            *_OPTIONS,
            *options,
            ("grpc.ssl_target_name_override", MANAGER_SERVER_NAME),
        ]
        return creds, all_options

    @staticmethod
    def joining_channel(
        addr: str, join: JoinMaterial, trusted_root: bytes | None = None
    ) -> grpc.aio.Channel:
        """A channel for a node that has no certificate yet, presenting a join certificate.
        Without ``trusted_root`` it reaches the server's join certificate (enough to fetch the
        root CA); with it, the server must prove it is a manager under that root."""
        creds = grpc.ssl_channel_credentials(
            root_certificates=trusted_root or join.ca_cert,
            private_key=join.key,
            certificate_chain=join.cert,
        )
        name = MANAGER_SERVER_NAME if trusted_root else JOIN_SERVER_NAME
        options = [*_OPTIONS, ("grpc.ssl_target_name_override", name)]
        return grpc.aio.secure_channel(addr, creds, options=options)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata naming this node (used only while TLS is off)."""
        return ((NODE_ID_METADATA, self.node_id),) if self.node_id and self.tls is None else ()


def peer_identity(context: grpc.aio.ServicerContext) -> PeerIdentity | None:
    """Who is calling: from the verified client certificate when there is one (a joining
    node's join certificate names nobody: None), else from the caller's metadata (only ever
    trusted while TLS is off)."""
    from shoal.rpc.authz import JOINING, certificate_peer

    peer = certificate_peer(context)
    if peer is not None:
        if peer.role == JOINING:
            return None
        role = {"swarm-manager": "manager", "swarm-worker": "worker"}.get(peer.role)
        return PeerIdentity(peer.node_id, role, peer.cluster_id, verified=True)
    for key, value in context.invocation_metadata() or ():
        if key == NODE_ID_METADATA and value:
            return PeerIdentity(node_id=value)
    return None
