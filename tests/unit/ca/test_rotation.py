"""The root rotation's decisions, and that its certificates verify across the old and new
roots over real TLS (gRPC's BoringSSL, as between daemons)."""

import datetime as dt

import grpc
import grpc.aio
import pytest

from shoal.api.objects import Cluster, JoinTokens, Node, NodeDescription, NodeStatus, RootCA
from shoal.api.types import NodeRole, NodeState
from shoal.ca import tokens
from shoal.ca.certificates import new_node_key, root_tls_info, sign_node_certificate
from shoal.ca.rootca import create_root_ca
from shoal.manager.nodeca.rotation import (
    begin_rotation,
    finish_rotation,
    rotation_done,
    rotation_requested,
)
from shoal.rpc import TLSMaterial, Transport

NOW = dt.datetime.now(dt.UTC)


def cluster_with(root) -> Cluster:  # type: ignore[no-untyped-def]
    ca = root.cert_pem
    return Cluster(
        ID="c1",
        TLSInfo=root_tls_info(ca),
        RootCA=RootCA(
            CACert=ca.decode(),
            CAKey=root.key_pem.decode(),
            CACertHash=tokens.ca_digest(ca),
            JoinTokens=JoinTokens(Worker=tokens.generate(ca), Manager=tokens.generate(ca)),
        ),
    )


def node(node_id: str, issuer_pem: bytes | None, state: NodeState = NodeState.READY) -> Node:
    desc = NodeDescription(TLSInfo=root_tls_info(issuer_pem) if issuer_pem else None)
    return Node(ID=node_id, Description=desc, Status=NodeStatus(State=state))


def issue(cluster: Cluster, node_id: str, role: NodeRole = NodeRole.WORKER) -> TLSMaterial:
    ca_cert, ca_key, chain = cluster.RootCA.signer()
    key = new_node_key()
    cert = sign_node_certificate(
        key.csr_pem, ca_cert, ca_key, node_id, role, cluster.ID, dt.timedelta(hours=1), NOW
    )
    return TLSMaterial(cert=cert + chain, key=key.key_pem, ca=cluster.RootCA.trust_bundle())


def test_a_rotation_starts_when_force_rotate_moves_and_not_again() -> None:
    cluster = cluster_with(create_root_ca(NOW))
    assert not rotation_requested(cluster)
    cluster.Spec.CAConfig.ForceRotate = 1
    assert rotation_requested(cluster)
    rotating = begin_rotation(cluster, create_root_ca(NOW))
    assert rotating.RootRotationInProgress
    assert not rotation_requested(rotating)
    # Nodes trust both roots, the new one first (it signs).
    assert rotating.RootCA.trust_bundle().startswith(rotating.RootCA.RootRotation.CACert.encode())
    assert rotating.RootCA.CACert.encode() in rotating.RootCA.trust_bundle()
    assert rotating.TLSInfo == cluster.TLSInfo  # the current root until it ends


def test_it_ends_once_every_node_that_is_up_has_a_new_certificate() -> None:
    old = create_root_ca(NOW)
    cluster = cluster_with(old)
    cluster.Spec.CAConfig.ForceRotate = 1
    rotating = begin_rotation(cluster, create_root_ca(NOW))
    new_pem = rotating.RootCA.RootRotation.CACert.encode()
    assert not rotation_done(rotating, [node("a", new_pem), node("b", old.cert_pem)])
    assert not rotation_done(rotating, [node("a", new_pem), node("b", None)])
    assert rotation_done(
        rotating, [node("a", new_pem), node("b", old.cert_pem, state=NodeState.DOWN)]
    )
    done = finish_rotation(rotating)
    assert done.RootCA.CACert.encode() == new_pem
    assert done.RootCA.RootRotation is None and not done.RootRotationInProgress
    assert done.RootCA.trust_bundle() == new_pem
    # The tokens pin the new root now.
    assert tokens.parse(done.RootCA.JoinTokens.Worker).ca_digest == tokens.ca_digest(new_pem)
    assert done.RootCA.JoinTokens.Worker != rotating.RootCA.JoinTokens.Worker


async def _handshake(server: TLSMaterial, client: TLSMaterial) -> bool:
    """Whether a client with ``client`` material completes a call to a server with ``server``."""

    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return request

    srv_transport = Transport(tls=server)
    srv = srv_transport.server()
    srv.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "test.Echo",
                {"Echo": grpc.unary_unary_rpc_method_handler(echo)},
            )
        ]
    )
    port = srv_transport.add_port(srv, "127.0.0.1:0")
    await srv.start()
    try:
        channel = Transport(tls=client).channel(f"127.0.0.1:{port}")
        try:
            call = channel.unary_unary("/test.Echo/Echo")
            return await call(b"hi", timeout=5) == b"hi"
        except grpc.aio.AioRpcError:
            return False
        finally:
            await channel.close()
    finally:
        await srv.stop(None)


@pytest.mark.asyncio
async def test_during_a_rotation_old_and_new_certificates_verify_each_other() -> None:
    old = create_root_ca(NOW)
    before = cluster_with(old)
    before.Spec.CAConfig.ForceRotate = 1
    during = begin_rotation(before, create_root_ca(NOW))
    manager_old = issue(before, "m", NodeRole.MANAGER)  # not yet renewed, trusts the old root
    worker_new = issue(during, "w")  # renewed: new root, with the cross-signed root
    manager_new = issue(during, "m", NodeRole.MANAGER)
    worker_old_only = issue(before, "w")
    # Through the cross-signed root, a node still trusting only the old root accepts a
    # manager already on the new root, and a manager not yet told of the new root accepts a
    # node that renewed: no order of renewals cuts a node off.
    assert await _handshake(manager_new, worker_old_only)
    assert await _handshake(manager_old, worker_new)
    assert await _handshake(manager_new, worker_new)
    # Without the cross-signed root, a new certificate means nothing to the old root.
    bare = TLSMaterial(
        cert=worker_new.cert.split(b"-----END CERTIFICATE-----")[0]
        + b"-----END CERTIFICATE-----\n",
        key=worker_new.key,
        ca=worker_new.ca,
    )
    assert not await _handshake(manager_old, bare)


@pytest.mark.asyncio
async def test_a_server_takes_a_renewed_certificate_on_the_next_handshake() -> None:
    cluster = cluster_with(create_root_ca(NOW))
    other = cluster_with(create_root_ca(NOW))
    srv_transport = Transport(tls=issue(other, "m", NodeRole.MANAGER))
    srv = srv_transport.server()
    port = srv_transport.add_port(srv, "127.0.0.1:0")
    await srv.start()
    try:
        client = Transport(tls=issue(cluster, "w"))

        async def connects() -> bool:
            channel = client.channel(f"127.0.0.1:{port}")
            try:
                call = channel.unary_unary("/test.Echo/Echo")
                try:
                    await call(b"hi", timeout=5)
                except grpc.aio.AioRpcError as err:
                    # UNIMPLEMENTED: the handshake passed, there is just no such method.
                    return err.code() == grpc.StatusCode.UNIMPLEMENTED
                return True
            finally:
                await channel.close()

        assert not await connects()  # the server's certificate is from another root
        srv_transport.update(issue(cluster, "m", NodeRole.MANAGER))
        assert await connects()
    finally:
        await srv.stop(None)
