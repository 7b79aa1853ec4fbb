"""The task state machine: given a task's desired and current state, what the agent does
next. Pure: the task manager performs the step with the controller."""

from enum import Enum

from shoal.api.types import TaskState


class Step(Enum):
    NOOP = "noop"
    ACCEPT = "accept"  # -> accepted
    BEGIN_PREPARE = "begin-prepare"  # -> preparing
    PREPARE = "prepare"  # controller.prepare, -> ready
    BEGIN_START = "begin-start"  # -> starting
    START = "start"  # controller.start, -> running
    WAIT = "wait"  # controller.wait, -> complete (or failed)
    SHUTDOWN = "shutdown"  # controller.shutdown, -> shutdown


# The state each step leads to and the message swarmkit writes with it.
OUTCOME: dict[Step, tuple[TaskState, str]] = {
    Step.ACCEPT: (TaskState.ACCEPTED, "accepted"),
    Step.BEGIN_PREPARE: (TaskState.PREPARING, "preparing"),
    Step.PREPARE: (TaskState.READY, "prepared"),
    Step.BEGIN_START: (TaskState.STARTING, "starting"),
    Step.START: (TaskState.RUNNING, "started"),
    Step.WAIT: (TaskState.COMPLETE, "finished"),
    Step.SHUTDOWN: (TaskState.SHUTDOWN, "shutdown"),
}


def next_step(desired: TaskState, current: TaskState) -> Step:
    if desired >= TaskState.SHUTDOWN:
        return Step.NOOP if current >= TaskState.COMPLETE else Step.SHUTDOWN
    if current > desired:
        return Step.NOOP
    # These states move on even when they have reached the desired state: a task asked to be
    # ready finishes preparing, and a running task is waited on.
    if current == TaskState.PREPARING:
        return Step.PREPARE
    if current == TaskState.STARTING:
        return Step.START
    if current == TaskState.RUNNING:
        return Step.WAIT
    if current >= desired:
        return Step.NOOP
    if current in (TaskState.NEW, TaskState.PENDING, TaskState.ASSIGNED):
        return Step.ACCEPT
    if current == TaskState.ACCEPTED:
        return Step.BEGIN_PREPARE
    if current == TaskState.READY:
        return Step.BEGIN_START
    return Step.NOOP


def failure_state(current: TaskState) -> TaskState:
    """Where a fatal error leads: before starting, the task is rejected; after, failed."""
    return TaskState.REJECTED if current < TaskState.STARTING else TaskState.FAILED
