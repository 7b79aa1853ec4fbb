"""Errors across gRPC: a ShoalError raised by a servicer reaches the caller as the same
error class with the same message."""

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import grpc
import grpc.aio

from shoal import errors

_BY_CODE: dict[grpc.StatusCode, type[errors.ShoalError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.ALREADY_EXISTS: errors.Conflict,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: errors.PermissionDenied,
}

# OutOfSequence travels as UNKNOWN (as in swarmkit); this detail tells it apart.
_OUT_OF_SEQUENCE = "update out of sequence"


async def abort_with(context: grpc.aio.ServicerContext, err: errors.ShoalError) -> None:
    await context.abort(grpc.StatusCode[err.grpc_code], err.message)


def from_rpc_error(err: grpc.aio.AioRpcError) -> errors.ShoalError:
    code = err.code()
    message = err.details() or str(code)
    if code == grpc.StatusCode.UNKNOWN and message == _OUT_OF_SEQUENCE:
        return errors.OutOfSequence()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return errors.Unavailable(message)
    cls = _BY_CODE.get(code, errors.ShoalError)
    return cls(message)


F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def rpc_errors(fn: F) -> F:
    """Servicer method decorator: a ShoalError becomes a gRPC status with its code."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await fn(self, request, context)
        except errors.ShoalError as err:
            await abort_with(context, err)

    return cast(F, wrapper)  # the same signature: wraps keeps what it says
