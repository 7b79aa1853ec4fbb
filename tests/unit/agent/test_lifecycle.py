import itertools

import pytest

from shoal.agent.exec.lifecycle import OUTCOME, Step, failure_state, next_step
from shoal.api.types import TaskState as S

ALL = list(S)


@pytest.mark.parametrize(("desired", "current"), list(itertools.product(ALL, ALL)))
def test_steps_only_move_forward_and_never_past_shutdown(desired, current):
    step = next_step(desired, current)
    if step is Step.NOOP:
        return
    target, _ = OUTCOME[step]
    assert target > current
    assert target <= S.SHUTDOWN


def test_the_happy_path_to_running_and_completion():
    state, seen = S.ASSIGNED, []
    while (step := next_step(S.RUNNING, state)) is not Step.NOOP:
        state, message = OUTCOME[step]
        seen.append((state, message))
        if state == S.COMPLETE:
            break
    assert seen == [
        (S.ACCEPTED, "accepted"),
        (S.PREPARING, "preparing"),
        (S.READY, "prepared"),
        (S.STARTING, "starting"),
        (S.RUNNING, "started"),
        (S.COMPLETE, "finished"),
    ]


def test_a_task_desired_ready_is_prepared_but_not_started():
    assert next_step(S.READY, S.ACCEPTED) is Step.BEGIN_PREPARE
    assert next_step(S.READY, S.PREPARING) is Step.PREPARE
    assert next_step(S.READY, S.READY) is Step.NOOP
    assert next_step(S.RUNNING, S.READY) is Step.BEGIN_START


@pytest.mark.parametrize("current", [s for s in ALL if s < S.COMPLETE])
def test_shutdown_from_any_live_state(current):
    assert next_step(S.SHUTDOWN, current) is Step.SHUTDOWN
    assert next_step(S.REMOVE, current) is Step.SHUTDOWN


@pytest.mark.parametrize("current", [s for s in ALL if s >= S.COMPLETE])
def test_nothing_to_do_for_finished_tasks(current):
    for desired in ALL:
        assert next_step(desired, current) is Step.NOOP


def test_failures_reject_before_start_and_fail_after():
    assert failure_state(S.PREPARING) == S.REJECTED
    assert failure_state(S.STARTING) == S.FAILED
    assert failure_state(S.RUNNING) == S.FAILED
