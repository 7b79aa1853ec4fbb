"""Errors a user can see, each carrying the HTTP status the Docker Engine API uses for it.

The message is Docker's wording: the engine API returns ``{"message": str(error)}`` and the
CLI prints ``Error response from daemon: <message>``. Errors that Docker's daemon passes on
from swarmkit's control API read ``rpc error: code = <Code> desc = <text>``; build those with
``swarm_error`` so the wording matches.
"""

from typing import TypeVar


class ShoalError(Exception):
    status = 500
    grpc_code = "UNKNOWN"  # grpc.StatusCode name, for node-to-node RPC
    go_code = "Unknown"  # the same code as Go's grpc prints it in messages

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidArgument(ShoalError):
    status = 400
    grpc_code = "INVALID_ARGUMENT"
    go_code = "InvalidArgument"


class NotFound(ShoalError):
    status = 404
    grpc_code = "NOT_FOUND"
    go_code = "NotFound"


class Conflict(ShoalError):
    """An object with that name exists already."""

    status = 409
    grpc_code = "ALREADY_EXISTS"
    go_code = "AlreadyExists"


class OutOfSequence(ShoalError):
    """An update carried a stale Version.Index."""

    def __init__(self, message: str = "update out of sequence") -> None:
        super().__init__(message)


class FailedPrecondition(ShoalError):
    status = 400
    grpc_code = "FAILED_PRECONDITION"
    go_code = "FailedPrecondition"


class Unimplemented(ShoalError):
    status = 501
    grpc_code = "UNIMPLEMENTED"
    go_code = "Unimplemented"


class Unavailable(ShoalError):
    """The node cannot answer: not a manager, not in a swarm, no leader."""

    status = 503
    grpc_code = "UNAVAILABLE"
    go_code = "Unavailable"


class Unauthenticated(ShoalError):
    """A secret given does not open what it should (a wrong unlock key)."""

    status = 401
    grpc_code = "UNAUTHENTICATED"
    go_code = "Unauthenticated"


class PermissionDenied(ShoalError):
    status = 403
    grpc_code = "PERMISSION_DENIED"
    go_code = "PermissionDenied"


E = TypeVar("E", bound=ShoalError)


def swarm_error(cls: type[E], desc: str) -> E:
    """An error worded as Docker words errors coming from the swarm's control API."""
    return cls(f"rpc error: code = {cls.go_code} desc = {desc}")


NOT_A_MANAGER = (
    "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster "
    "state. Please run this command on a manager node or promote the current node to a manager."
)
# Docker's daemon words these two naming "docker swarm ..." (moby daemon/cluster/errors.go),
# whichever client asks; Docker's own CLI prints them as they are, and so does shoal's.
NOT_IN_SWARM = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to '
    "connect this node to swarm and try again."
)
SWARM_EXISTS = (
    'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and '
    "join another one."
)
NO_SWARM = "This node is not part of a swarm"
# Autolock (moby daemon/cluster/errors.go): a manager that restarted with its keys sealed.
# Docker's words exactly, "docker swarm unlock" included: clients match this text (and the
# verb is the same in the shoal CLI).
SWARM_LOCKED = (
    'Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker '
    'swarm unlock" to unlock it.'
)
SWARM_LOCKED_LEAVE = (
    "Swarm is encrypted and locked. Please unlock it first or use `--force` to ignore this message."
)
INVALID_UNLOCK_KEY = "swarm could not be unlocked: invalid key provided"
NOT_LOCKED = "swarm is not locked"
