"""Enumerations with Docker's spelling."""

from enum import StrEnum


class TaskState(StrEnum):
    """A task's observed or desired state. A task only ever moves forward in this order."""

    NEW = "new"
    PENDING = "pending"
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    PREPARING = "preparing"
    READY = "ready"
    STARTING = "starting"
    RUNNING = "running"
    COMPLETE = "complete"
    SHUTDOWN = "shutdown"
    FAILED = "failed"
    REJECTED = "rejected"
    REMOVE = "remove"
    ORPHANED = "orphaned"

    # Each state's place in that order, set below the class (``_rank``): the scheduler and
    # the orchestrators compare states for every task they look at.
    _rank: int

    @property
    def order(self) -> int:
        return self._rank

    def __lt__(self, other: object) -> bool:
        if isinstance(other, TaskState):
            return self._rank < other._rank
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if isinstance(other, TaskState):
            return self._rank <= other._rank
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if isinstance(other, TaskState):
            return self._rank > other._rank
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if isinstance(other, TaskState):
            return self._rank >= other._rank
        return NotImplemented

    @property
    def is_terminal(self) -> bool:
        """complete, shutdown, failed, rejected, remove, orphaned: the task will not run again."""
        return self._rank > _TASK_ORDER[TaskState.RUNNING]

    # Hashed as its string (as a plain str key finds it in a dict), by str's own C function:
    # a Python ``__hash__`` here cost a call on every dict lookup keyed by a state.
    __hash__ = str.__hash__


# "allocated" existed in older swarmkit between new and pending; we never produce it.
_TASK_ORDER = {state: i for i, state in enumerate(TaskState)}
for _state, _i in _TASK_ORDER.items():
    _state._rank = _i


class NodeRole(StrEnum):
    WORKER = "worker"
    MANAGER = "manager"


class NodeAvailability(StrEnum):
    ACTIVE = "active"
    PAUSE = "pause"
    DRAIN = "drain"


class NodeState(StrEnum):
    UNKNOWN = "unknown"
    DOWN = "down"
    READY = "ready"
    DISCONNECTED = "disconnected"


class Reachability(StrEnum):
    UNKNOWN = "unknown"
    UNREACHABLE = "unreachable"
    REACHABLE = "reachable"


class RestartCondition(StrEnum):
    NONE = "none"
    ON_FAILURE = "on-failure"
    ANY = "any"


class FailureAction(StrEnum):
    PAUSE = "pause"
    CONTINUE = "continue"
    ROLLBACK = "rollback"


class UpdateOrder(StrEnum):
    STOP_FIRST = "stop-first"
    START_FIRST = "start-first"


class UpdateState(StrEnum):
    UPDATING = "updating"
    PAUSED = "paused"
    COMPLETED = "completed"
    ROLLBACK_STARTED = "rollback_started"
    ROLLBACK_PAUSED = "rollback_paused"
    ROLLBACK_COMPLETED = "rollback_completed"


class PortProtocol(StrEnum):
    TCP = "tcp"
    UDP = "udp"
    SCTP = "sctp"


class PublishMode(StrEnum):
    INGRESS = "ingress"
    HOST = "host"


class EndpointMode(StrEnum):
    VIP = "vip"
    DNSRR = "dnsrr"


class Runtime(StrEnum):
    """What executes a task. ``container`` is Docker's; ``process`` is shoal's own."""

    CONTAINER = "container"
    PROCESS = "process"
