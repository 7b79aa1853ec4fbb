import datetime as dt

import pytest

from shoal.api.base import Version
from shoal.api.objects import UpdateStatus
from shoal.api.specs import SECOND, UpdateConfig
from shoal.api.types import FailureAction, UpdateOrder, UpdateState
from shoal.errors import FailedPrecondition
from shoal.manager.orchestrator.update_config import UpdateSettings, update_settings
from shoal.manager.orchestrator.update_status import (
    FailureResponse,
    apply_spec_update,
    begin_rollback,
    failure_message,
    failure_response,
    mark_completed,
    mark_paused,
    mark_rolling_back,
    mark_started,
    new_service_spec_version,
    too_many_failures,
)
from tests.unit.orchestrator.helpers import service

NOW = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(seconds=9)


def _with_status(state):
    s = service()
    s.UpdateStatus = UpdateStatus(State=state, StartedAt=NOW, Message="x")
    return s


def test_update_defaults_are_swarms():
    s = service()
    for rollback in (False, True):
        cfg = update_settings(s.Spec, rollback=rollback)
        assert cfg == UpdateSettings(
            1, 0, FailureAction.PAUSE, 5 * SECOND, 0.0, UpdateOrder.STOP_FIRST
        )
    s.Spec.UpdateConfig = UpdateConfig(Parallelism=0, Delay=2 * SECOND, Monitor=0)
    cfg = update_settings(s.Spec, rollback=False)
    assert cfg.workers(6) == 6 and cfg.delay_seconds == 2 and cfg.monitor == 0
    assert cfg.final_monitor_seconds() == 3  # delay + 1s when delay >= monitor
    s.Spec.RollbackConfig = UpdateConfig(
        FailureAction=FailureAction.CONTINUE, Order=UpdateOrder.START_FIRST
    )
    rb = update_settings(s.Spec, rollback=True)
    assert (
        rb.failure_action == FailureAction.CONTINUE and rb.start_first and rb.monitor == 5 * SECOND
    )
    assert update_settings(s.Spec, rollback=False).parallelism == 0


def test_start_and_complete():
    s = service()
    started = mark_started(s, NOW)
    assert started.UpdateStatus == UpdateStatus(
        State=UpdateState.UPDATING, StartedAt=NOW, Message="update in progress"
    )
    assert mark_started(started, LATER) is None
    done = mark_completed(started, LATER)
    assert (done.UpdateStatus.State, done.UpdateStatus.Message) == (
        UpdateState.COMPLETED,
        "update completed",
    )
    assert (done.UpdateStatus.StartedAt, done.UpdateStatus.CompletedAt) == (NOW, LATER)
    rb = mark_completed(_with_status(UpdateState.ROLLBACK_STARTED), LATER)
    assert (rb.UpdateStatus.State, rb.UpdateStatus.Message) == (
        UpdateState.ROLLBACK_COMPLETED,
        "rollback completed",
    )
    assert mark_completed(service(), LATER) is None
    assert s.UpdateStatus is None  # inputs untouched


def test_pause():
    p = mark_paused(_with_status(UpdateState.UPDATING), "m")
    assert (p.UpdateStatus.State, p.UpdateStatus.Message) == (UpdateState.PAUSED, "m")
    p = mark_paused(_with_status(UpdateState.ROLLBACK_STARTED), "m")
    assert p.UpdateStatus.State == UpdateState.ROLLBACK_PAUSED
    assert mark_paused(service(), "m") is None


def test_automatic_rollback_restores_previous_spec():
    s = _with_status(UpdateState.UPDATING)
    s.PreviousSpec = s.Spec.clone()
    s.Spec.TaskTemplate.ContainerSpec.Image = "img:2"
    s.Version = Version(Index=42)
    r = mark_rolling_back(s, "why")
    assert r.Spec.TaskTemplate.ContainerSpec.Image == "img:1" and r.PreviousSpec is None
    assert (r.UpdateStatus.State, r.UpdateStatus.Message) == (UpdateState.ROLLBACK_STARTED, "why")
    assert r.UpdateStatus.StartedAt == NOW
    assert r.SpecVersion == Version(Index=42)
    # Nothing to go back to: pause instead.
    lone = _with_status(UpdateState.UPDATING)
    assert mark_rolling_back(lone, "why").UpdateStatus.State == UpdateState.PAUSED


def test_failure_responses():
    P, R, N = FailureResponse.PAUSE, FailureResponse.ROLLBACK, FailureResponse.NONE
    assert failure_response(FailureAction.PAUSE, rolling_back=False) == P
    assert failure_response(FailureAction.ROLLBACK, rolling_back=False) == R
    assert failure_response(FailureAction.CONTINUE, rolling_back=False) == N
    # A rollback is never rolled back.
    assert failure_response(FailureAction.ROLLBACK, rolling_back=True) == P
    assert failure_response(FailureAction.PAUSE, rolling_back=True) == P
    assert failure_message(P, "T", rolling_back=False) == (
        "update paused due to failure or early termination of task T"
    )
    assert failure_message(P, "T", rolling_back=True) == (
        "rollback paused due to failure or early termination of task T"
    )
    assert failure_message(R, "T", rolling_back=False) == (
        "update rolled back due to failure or early termination of task T"
    )


def test_failure_ratio():
    assert too_many_failures(1, 6, 0)
    assert not too_many_failures(0, 6, 0)
    assert not too_many_failures(2, 6, 0.5)
    assert too_many_failures(4, 6, 0.5)
    assert not too_many_failures(1, 0, 0)


def test_control_api_update_and_rollback():
    s = new_service_spec_version(service())
    assert s.SpecVersion == Version(Index=0)
    s.Version = Version(Index=10)
    s.UpdateStatus = UpdateStatus(State=UpdateState.PAUSED)
    spec = s.Spec.clone()
    spec.TaskTemplate.ContainerSpec.Image = "img:2"
    u = apply_spec_update(s, spec)
    assert u.Spec == spec and u.PreviousSpec == s.Spec
    assert u.SpecVersion == Version(Index=10) and u.UpdateStatus is None
    u.Version = Version(Index=12)
    r = begin_rollback(u, NOW)
    assert r.Spec == s.Spec and r.PreviousSpec == spec  # swapped, as Docker does
    assert r.SpecVersion == Version(Index=12)
    assert r.UpdateStatus == UpdateStatus(
        State=UpdateState.ROLLBACK_STARTED, StartedAt=NOW, Message="manually requested rollback"
    )
    with pytest.raises(FailedPrecondition, match="does not have a previous spec"):
        begin_rollback(service(), NOW)
