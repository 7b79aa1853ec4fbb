"""Joining a swarm: how a node without a certificate gets one from a manager with a join
token. Shared by the node daemon (``swarm join``) and the simulated nodes of a fleet."""

import grpc
import grpc.aio

from shoal.ca import tokens
from shoal.ca.join_ca import JoinMaterial
from shoal.errors import InvalidArgument
from shoal.rpc import Transport, from_rpc_error, pb, pb_grpc

JOIN_TIMEOUT = 20.0


async def request_certificate(
    remote: str,
    join: JoinMaterial,
    ca_digest: str,
    token: str,
    csr: bytes,
    advertise: str,
    availability: str,
    description: bytes,
    rpc_timeout: float = JOIN_TIMEOUT,
) -> pb.IssueNodeCertificateResponse:
    """Ask the manager at ``remote`` to sign ``csr`` for a node joining with ``token``
    (whose CA digest is ``ca_digest``); ``description``: the node's NodeDescription JSON."""
    channel = Transport.joining_channel(remote, join)
    try:
        # The CA certificate comes over an unauthenticated channel: trust it only if it
        # is the one the token names.
        ca = await pb_grpc.NodeCAStub(channel).GetRootCACertificate(
            pb.GetRootCACertificateRequest(), timeout=rpc_timeout
        )
        if tokens.ca_digest(ca.certificate) != ca_digest:
            expected = f"{int(ca_digest, 36):064x}"
            raise InvalidArgument(f"remote CA does not match fingerprint. Expected: {expected}")
    except grpc.aio.AioRpcError as err:
        raise from_rpc_error(err) from None
    finally:
        await channel.close()
    # The token goes only to a manager that proves it holds a certificate from that root.
    channel = Transport.joining_channel(remote, join, trusted_root=ca.certificate)
    try:
        return await pb_grpc.NodeCAStub(channel).IssueNodeCertificate(
            pb.IssueNodeCertificateRequest(
                token=token,
                csr=csr,
                availability=availability,
                description=description,
                advertise_addr=advertise,
            ),
            timeout=rpc_timeout,
        )
    except grpc.aio.AioRpcError as err:
        raise from_rpc_error(err) from None
    finally:
        await channel.close()
