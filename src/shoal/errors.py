"""Errors a user can see, each carrying the HTTP status the Docker Engine API uses for it.

The message is Docker's wording: the engine API returns ``{"message": str(error)}`` and the
CLI prints ``Error response from daemon: <message>``.
"""


class ShoalError(Exception):
    status = 500
    grpc_code = "UNKNOWN"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidArgument(ShoalError):
    status = 400
    grpc_code = "INVALID_ARGUMENT"


class NotFound(ShoalError):
    status = 404
    grpc_code = "NOT_FOUND"


class Conflict(ShoalError):
    """An object with that name exists already."""

    status = 409
    grpc_code = "ALREADY_EXISTS"


class OutOfSequence(ShoalError):
    """An update carried a stale Version.Index."""

    status = 500
    grpc_code = "UNKNOWN"

    def __init__(self, message: str = "update out of sequence") -> None:
        super().__init__(message)


class FailedPrecondition(ShoalError):
    status = 400
    grpc_code = "FAILED_PRECONDITION"


class Unavailable(ShoalError):
    """The node cannot answer: not a manager, not in a swarm, no leader."""

    status = 503
    grpc_code = "UNAVAILABLE"


class PermissionDenied(ShoalError):
    status = 403
    grpc_code = "PERMISSION_DENIED"


NOT_A_MANAGER = (
    "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster "
    "state. Please run this command on a manager node or promote the current node to a manager."
)
NOT_IN_SWARM = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to '
    "connect this node to swarm and try again."
)
