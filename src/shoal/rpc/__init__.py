"""Node-to-node RPC over gRPC (grpc.aio): generated stubs plus the transport helpers.

Transport security is a setting of the transport, not of the services: ``Transport`` builds
servers and channels either in the clear (before a node has a certificate) or with mutual
TLS, and ``peer_identity`` tells a servicer who is calling in either case.
"""

from shoal.rpc import shoal_pb2 as pb
from shoal.rpc import shoal_pb2_grpc as pb_grpc
from shoal.rpc.errors import abort_with, from_rpc_error, rpc_errors
from shoal.rpc.transport import PeerIdentity, TLSMaterial, Transport, peer_identity

# A manager that does not lead refuses an agent's session and names the leader's address in
# this trailing metadata key, so the agent goes there next.
LEADER_METADATA = "x-shoal-leader"
# An agent whose daemon is stopping on purpose (a restart, an upgrade) says so in this
# metadata key of a last heartbeat: its managers then give it its heartbeat timeout to come
# back, not the short grace of a node whose connection broke.
RESTARTING_METADATA = "x-shoal-restarting"

__all__ = [
    "LEADER_METADATA",
    "RESTARTING_METADATA",
    "PeerIdentity",
    "TLSMaterial",
    "Transport",
    "abort_with",
    "from_rpc_error",
    "pb",
    "pb_grpc",
    "peer_identity",
    "rpc_errors",
]
