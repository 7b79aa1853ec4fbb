"""Servers, channels and caller identity for node-to-node gRPC."""

from dataclasses import dataclass

import grpc
import grpc.aio

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


class Transport:
    """Builds gRPC servers and channels for one node. ``tls`` None means in the clear."""

    def __init__(self, tls: TLSMaterial | None = None, node_id: str = "") -> None:
        self.tls = tls
        self.node_id = node_id

    def server(self) -> grpc.aio.Server:
        return grpc.aio.server(options=_SERVER_OPTIONS)

    def add_port(self, server: grpc.aio.Server, addr: str) -> int:
        """Listen on ``addr``; returns the bound port (useful with port 0)."""
        if self.tls is None:
            return server.add_insecure_port(addr)
        creds = grpc.ssl_server_credentials(
            [(self.tls.key, self.tls.cert)],
            root_certificates=self.tls.ca,
            # Joining nodes have no certificate yet; each RPC checks its caller itself.
            require_client_auth=False,
        )
        return server.add_secure_port(addr, creds)

    def channel(self, addr: str) -> grpc.aio.Channel:
        if self.tls is None:
            return grpc.aio.insecure_channel(addr, options=_OPTIONS)
        creds = grpc.ssl_channel_credentials(
            root_certificates=self.tls.ca,
            private_key=self.tls.key,
            certificate_chain=self.tls.cert,
        )
        return grpc.aio.secure_channel(addr, creds, options=_OPTIONS)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata naming this node (used only while TLS is off)."""
        return ((NODE_ID_METADATA, self.node_id),) if self.node_id else ()


def peer_identity(context: grpc.aio.ServicerContext) -> PeerIdentity | None:
    """Who is calling: from the verified client certificate when there is one, else from the
    caller's metadata (only ever trusted while TLS is off)."""
    auth = context.auth_context() or {}
    cn = auth.get("x509_common_name")
    if cn:
        return PeerIdentity(node_id=cn[0].decode(), verified=True)
    for key, value in context.invocation_metadata() or ():
        if key == NODE_ID_METADATA and value:
            return PeerIdentity(node_id=value)
    return None
