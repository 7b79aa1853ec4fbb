"""Who may call what, decided from the caller's verified certificate.

Each RPC declares which roles may call it; the server checks every call before the servicer
runs. With TLS off (before the CA issue landed, and in some unit tests) there is nothing to
check and every call passes, as the caller's word is all there is.
"""

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from cryptography import x509
from cryptography.x509.oid import NameOID

from shoal.ca.join_ca import JOIN_CA_NAME

MANAGER = "swarm-manager"
WORKER = "swarm-worker"
JOINING = "joining"  # a caller presenting a join certificate (see shoal.ca.join_ca)

# Method (or service prefix ending in "/") -> roles allowed. Anything not listed is refused.
POLICY: dict[str, frozenset[str]] = {
    "/shoal.v1.NodeCA/GetRootCACertificate": frozenset({JOINING, WORKER, MANAGER}),
    "/shoal.v1.NodeCA/IssueNodeCertificate": frozenset({JOINING, WORKER, MANAGER}),
    "/shoal.v1.Dispatcher/": frozenset({WORKER, MANAGER}),
    "/shoal.v1.LogBroker/": frozenset({WORKER, MANAGER}),
    "/shoal.v1.Logs/": frozenset({MANAGER}),
    "/shoal.v1.Control/": frozenset({MANAGER}),
    "/shoal.v1.Raft/": frozenset({MANAGER}),
}


def allowed_roles(method: str) -> frozenset[str]:
    if method in POLICY:
        return POLICY[method]
    service = method.rsplit("/", 1)[0] + "/"
    return POLICY.get(service, frozenset())


@dataclass(frozen=True)
class CertificatePeer:
    """A caller as its verified certificate names it."""

    node_id: str  # "" for a joining caller
    role: str  # MANAGER, WORKER or JOINING
    cluster_id: str


def certificate_peer(context: grpc.aio.ServicerContext) -> CertificatePeer | None:
    pem = (context.auth_context() or {}).get("x509_pem_cert")
    return _peer_named_by(pem[0]) if pem else None


# Every call asks (the authorizer, then the servicer); a node keeps one certificate for days.
@functools.lru_cache(maxsize=1024)
def _peer_named_by(pem: bytes) -> CertificatePeer:
    cert = x509.load_pem_x509_certificate(pem)
    if cert.issuer == JOIN_CA_NAME:
        return CertificatePeer("", JOINING, "")

    def attr(oid: x509.ObjectIdentifier) -> str:
        values = cert.subject.get_attributes_for_oid(oid)
        return str(values[0].value) if values else ""

    return CertificatePeer(
        node_id=attr(NameOID.COMMON_NAME),
        role=attr(NameOID.ORGANIZATIONAL_UNIT_NAME),
        cluster_id=attr(NameOID.ORGANIZATION_NAME),
    )


# Decides, for a node certificate that passed the role check, whether the node may still
# call (it exists, was not removed, and for manager-only calls is a manager now). Returns an
# error message, or None to let the call through.
NodeCheck = Callable[[CertificatePeer, frozenset[str]], str | None]


class Authorizer(grpc.aio.ServerInterceptor):
    def __init__(self, cluster_id: Callable[[], str], node_check: NodeCheck | None = None):
        self._cluster_id = cluster_id
        self._node_check = node_check

    def check(self, method: str, context: grpc.aio.ServicerContext) -> str | None:
        """None if the call may proceed, else why not."""
        peer = certificate_peer(context)
        if peer is None:
            return "no client certificate"
        roles = allowed_roles(method)
        if peer.role not in roles:
            return f"Permission denied: unauthorized peer role: {peer.role} may not call {method}"
        if peer.role == JOINING:
            return None
        if peer.cluster_id != self._cluster_id():
            return "Permission denied: certificate is for another cluster"
        if self._node_check is not None:
            return self._node_check(peer, roles)
        return None

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        return _guarded(handler, lambda ctx: self.check(method, ctx))


def _guarded(handler: grpc.RpcMethodHandler, check: Callable[[Any], str | None]) -> Any:
    """The same handler, refusing the call with PERMISSION_DENIED when ``check`` objects."""
    if handler.unary_unary:
        inner = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if (why := check(context)) is not None:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, why)
            return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            unary_unary, handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream:
        inner_us = handler.unary_stream

        async def unary_stream(
            request: Any, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            if (why := check(context)) is not None:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, why)
            result = inner_us(request, context)
            if inspect.isasyncgen(result):
                async for item in result:
                    yield item
            else:
                await result

        return grpc.unary_stream_rpc_method_handler(
            unary_stream, handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_unary:
        inner_su = handler.stream_unary

        async def stream_unary(
            request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext
        ) -> Any:
            if (why := check(context)) is not None:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, why)
            return await inner_su(request_iterator, context)

        return grpc.stream_unary_rpc_method_handler(
            stream_unary, handler.request_deserializer, handler.response_serializer
        )
    inner_ss = handler.stream_stream

    async def stream_stream(
        request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        if (why := check(context)) is not None:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, why)
        result = inner_ss(request_iterator, context)
        if inspect.isasyncgen(result):
            async for item in result:
                yield item
        else:
            await result

    return grpc.stream_stream_rpc_method_handler(
        stream_stream, handler.request_deserializer, handler.response_serializer
    )
