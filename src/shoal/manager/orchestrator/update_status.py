"""Service.UpdateStatus: the transitions the updater writes, with Swarm's messages, and the
helpers the control API uses when a user updates or rolls back a service.

Each function takes the service as stored and returns a changed clone to write, or None when
there is nothing to change (someone else changed the service meanwhile).
"""

import datetime as dt
from enum import Enum

from shoal.api.base import Version
from shoal.api.objects import Service, UpdateStatus
from shoal.api.specs import ServiceSpec
from shoal.api.types import FailureAction, UpdateState
from shoal.errors import FailedPrecondition

MSG_UPDATING = "update in progress"
MSG_COMPLETED = "update completed"
MSG_ROLLBACK_COMPLETED = "rollback completed"
MSG_MANUAL_ROLLBACK = "manually requested rollback"


def msg_update_paused(task_id: str) -> str:
    return f"update paused due to failure or early termination of task {task_id}"


def msg_rollback_paused(task_id: str) -> str:
    return f"rollback paused due to failure or early termination of task {task_id}"


def msg_rolled_back(task_id: str) -> str:
    return f"update rolled back due to failure or early termination of task {task_id}"


def update_state(service: Service) -> UpdateState | None:
    return service.UpdateStatus.State if service.UpdateStatus is not None else None


def rollback_in_progress(service: Service) -> bool:
    return update_state(service) == UpdateState.ROLLBACK_STARTED


def update_paused(service: Service) -> bool:
    return update_state(service) in (UpdateState.PAUSED, UpdateState.ROLLBACK_PAUSED)


def update_in_progress(service: Service) -> bool:
    return update_state(service) in (UpdateState.UPDATING, UpdateState.ROLLBACK_STARTED)


# --- what the updater writes -----------------------------------------------------------------


def mark_started(service: Service, now: dt.datetime) -> Service | None:
    if service.UpdateStatus is not None:
        return None
    s = service.clone()
    s.UpdateStatus = UpdateStatus(State=UpdateState.UPDATING, StartedAt=now, Message=MSG_UPDATING)
    return s


def mark_completed(service: Service, now: dt.datetime) -> Service | None:
    if service.UpdateStatus is None:
        return None
    s = service.clone()
    assert s.UpdateStatus is not None
    if s.UpdateStatus.State == UpdateState.ROLLBACK_STARTED:
        s.UpdateStatus.State = UpdateState.ROLLBACK_COMPLETED
        s.UpdateStatus.Message = MSG_ROLLBACK_COMPLETED
    else:
        s.UpdateStatus.State = UpdateState.COMPLETED
        s.UpdateStatus.Message = MSG_COMPLETED
    s.UpdateStatus.CompletedAt = now
    return s


def mark_paused(service: Service, message: str) -> Service | None:
    if service.UpdateStatus is None:
        return None
    s = service.clone()
    assert s.UpdateStatus is not None
    if s.UpdateStatus.State == UpdateState.ROLLBACK_STARTED:
        s.UpdateStatus.State = UpdateState.ROLLBACK_PAUSED
    else:
        s.UpdateStatus.State = UpdateState.PAUSED
    s.UpdateStatus.Message = message
    return s


def mark_rolling_back(service: Service, message: str) -> Service | None:
    """An automatic rollback: back to PreviousSpec, which is then forgotten (as in swarmkit;
    a manual rollback swaps the two instead). Without a previous spec the update pauses."""
    if service.UpdateStatus is None:
        return None
    if service.PreviousSpec is None:
        return mark_paused(service, message)
    s = service.clone()
    assert s.UpdateStatus is not None and s.PreviousSpec is not None
    s.UpdateStatus.State = UpdateState.ROLLBACK_STARTED
    s.UpdateStatus.Message = message
    s.Spec = s.PreviousSpec
    s.PreviousSpec = None
    s.SpecVersion = s.Version.clone()
    return s


class FailureResponse(Enum):
    PAUSE = "pause"
    ROLLBACK = "rollback"
    NONE = "none"


def failure_response(action: FailureAction, *, rolling_back: bool) -> FailureResponse:
    """What too many failures lead to. A rollback is never rolled back: it pauses."""
    if action == FailureAction.CONTINUE:
        return FailureResponse.NONE
    if action == FailureAction.ROLLBACK and not rolling_back:
        return FailureResponse.ROLLBACK
    return FailureResponse.PAUSE


def failure_message(response: FailureResponse, task_id: str, *, rolling_back: bool) -> str:
    if response == FailureResponse.ROLLBACK:
        return msg_rolled_back(task_id)
    return msg_rollback_paused(task_id) if rolling_back else msg_update_paused(task_id)


def too_many_failures(failures: int, slots: int, max_failure_ratio: float) -> bool:
    return slots > 0 and failures / slots > max_failure_ratio


# --- what the control API writes -------------------------------------------------------------


def apply_spec_update(service: Service, spec: ServiceSpec) -> Service:
    """``service update``: the new spec becomes current, the old one PreviousSpec, the spec
    version moves on, and UpdateStatus is cleared (which also resumes a paused update).
    Call on the service as stored, before writing it back with ``tx.update``."""
    s = service.clone()
    s.PreviousSpec = s.Spec
    s.Spec = spec.clone()
    s.SpecVersion = s.Version.clone()
    s.UpdateStatus = None
    return s


def begin_rollback(service: Service, now: dt.datetime) -> Service:
    """``service rollback`` / ``service update --rollback``: swap Spec and PreviousSpec and
    start a rollback (the updater then uses RollbackConfig)."""
    if service.PreviousSpec is None:
        raise FailedPrecondition(f"service {service.ID} does not have a previous spec")
    s = service.clone()
    assert s.PreviousSpec is not None
    s.Spec, s.PreviousSpec = s.PreviousSpec, s.Spec
    s.SpecVersion = s.Version.clone()
    s.UpdateStatus = UpdateStatus(
        State=UpdateState.ROLLBACK_STARTED, StartedAt=now, Message=MSG_MANUAL_ROLLBACK
    )
    return s


def new_service_spec_version(service: Service) -> Service:
    """For ``service create``: a service starts at spec version 0 (swarmkit does the same),
    so its first tasks and the service agree without comparing specs."""
    s = service.clone()
    if s.SpecVersion is None:
        s.SpecVersion = Version(Index=0)
    return s
