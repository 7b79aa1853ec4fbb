"""The NodeCA service: hands out the root CA certificate, and lets a node with a valid join
token into the cluster by creating its Node and signing its certificate."""

import ipaddress

import grpc
import grpc.aio

from shoal.api.ids import new_id
from shoal.api.objects import Cluster, JoinTokens, ManagerStatus, Node, NodeDescription, NodeStatus
from shoal.api.specs import NodeSpec
from shoal.api.types import NodeAvailability, NodeRole, NodeState, Reachability
from shoal.ca import tokens
from shoal.ca.certificates import sign_node_certificate
from shoal.clock import Clock
from shoal.errors import InvalidArgument, PermissionDenied, Unavailable, swarm_error
from shoal.manager.manager_peers import manager_peers
from shoal.rpc import pb, pb_grpc, rpc_errors
from shoal.rpc.authz import JOINING, certificate_peer
from shoal.store import MemoryStore, Tx

INVALID_TOKEN = "A valid join token is necessary to join this cluster"


def _peer_host(context: grpc.aio.ServicerContext) -> str:
    """The caller's IP from grpc's peer string ("ipv4:127.0.0.2:53422")."""
    peer = context.peer() or ""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return ""


class NodeCAServicer(pb_grpc.NodeCAServicer):
    def __init__(self, store: MemoryStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    @rpc_errors
    async def GetRootCACertificate(
        self, request: pb.GetRootCACertificateRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetRootCACertificateResponse:
        cluster = self._store.view().cluster()
        if cluster is None:
            raise Unavailable("this manager has no cluster yet")
        return pb.GetRootCACertificateResponse(certificate=cluster.RootCA.CACert.encode())

    @rpc_errors
    async def IssueNodeCertificate(
        self, request: pb.IssueNodeCertificateRequest, context: grpc.aio.ServicerContext
    ) -> pb.IssueNodeCertificateResponse:
        if not request.token:
            return self.renew(request, context)
        return await self.join(request, context)

    def renew(
        self, request: pb.IssueNodeCertificateRequest, context: grpc.aio.ServicerContext
    ) -> pb.IssueNodeCertificateResponse:
        """A node of the swarm asks for a new certificate (renewal, a new role, a new root):
        it is named by the certificate it presents, never by the request, and gets its
        current role. Signing needs no write, so any manager answers."""
        peer = certificate_peer(context)
        if peer is None or peer.role == JOINING:
            raise swarm_error(InvalidArgument, INVALID_TOKEN)
        view = self._store.view()
        cluster = view.cluster()
        if cluster is None:
            raise Unavailable("this manager has no cluster yet")
        node = view.get(Node, peer.node_id)
        if node is None:
            raise swarm_error(
                PermissionDenied, f"node {peer.node_id} is not a member of this swarm"
            )
        cert = self._sign(request.csr, cluster, node.ID, node.Role)
        return pb.IssueNodeCertificateResponse(
            node_id=node.ID,
            role=node.Role.value,
            certificate=cert,
            root_ca=cluster.RootCA.trust_bundle(),
            cluster_id=cluster.ID,
            managers=manager_peers(view),
        )

    def _sign(self, csr: bytes, cluster: Cluster, node_id: str, role: NodeRole) -> bytes:
        ca_cert, ca_key, chain = cluster.RootCA.signer()
        try:
            cert = sign_node_certificate(
                csr,
                ca_cert,
                ca_key,
                node_id=node_id,
                role=role,
                cluster_id=cluster.ID,
                expiry=cluster.Spec.CAConfig.node_cert_lifetime(),
                now=self._clock.now(),
            )
        except ValueError as err:
            raise swarm_error(InvalidArgument, str(err)) from None
        return cert + chain

    async def join(
        self, request: pb.IssueNodeCertificateRequest, context: grpc.aio.ServicerContext
    ) -> pb.IssueNodeCertificateResponse:
        """A new node with a join token: create it, with the role its token gives."""
        description = (
            NodeDescription.model_validate_json(request.description)
            if request.description
            else NodeDescription()
        )
        availability = request.availability or NodeAvailability.ACTIVE.value
        if availability not in NodeAvailability._value2member_map_:
            raise InvalidArgument(f"invalid availability: {availability}")
        advertise_host = request.advertise_addr.rsplit(":", 1)[0] if request.advertise_addr else ""
        addr = advertise_host or _peer_host(context)
        try:
            ipaddress.ip_address(addr)
        except ValueError:
            addr = _peer_host(context)

        def fn(tx: Tx) -> pb.IssueNodeCertificateResponse:
            cluster = tx.cluster()
            if cluster is None:
                raise Unavailable("this manager has no cluster yet")
            role = self._role_for_token(request.token, cluster.RootCA.JoinTokens)
            node_id = new_id()
            cert = self._sign(request.csr, cluster, node_id, role)
            node = Node(
                ID=node_id,
                Spec=NodeSpec(Role=role, Availability=NodeAvailability(availability)),
                Role=role,
                Description=description,
                Status=NodeStatus(State=NodeState.UNKNOWN, Addr=addr),
            )
            if role == NodeRole.MANAGER:
                node.ManagerStatus = ManagerStatus(
                    Leader=False, Reachability=Reachability.UNKNOWN, Addr=request.advertise_addr
                )
            tx.create(node)
            return pb.IssueNodeCertificateResponse(
                node_id=node_id,
                role=role.value,
                certificate=cert,
                root_ca=cluster.RootCA.trust_bundle(),
                cluster_id=cluster.ID,
                managers=manager_peers(tx),
            )

        return await self._store.update(fn)

    @staticmethod
    def _role_for_token(token: str, join_tokens: JoinTokens) -> NodeRole:
        # Compare against both tokens every time, in constant time, so timing reveals nothing.
        is_worker = tokens.matches(token, join_tokens.Worker)
        is_manager = tokens.matches(token, join_tokens.Manager)
        if is_manager:
            return NodeRole.MANAGER
        if is_worker:
            return NodeRole.WORKER
        raise swarm_error(InvalidArgument, INVALID_TOKEN)

    def add_to_server(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_NodeCAServicer_to_server(self, server)
