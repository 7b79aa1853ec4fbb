import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from shoal.api.base import Version
from shoal.api.specs import SECOND, RestartPolicy, TaskSpec
from shoal.api.types import RestartCondition, TaskState
from shoal.manager.orchestrator.restart_policy import (
    RestartHistory,
    SlotRestarts,
    restart_policy,
    should_restart,
)
from shoal.manager.orchestrator.task import SlotKey
from tests.unit.orchestrator.helpers import service, task

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def sec(n: float) -> dt.timedelta:
    return dt.timedelta(seconds=n)


def test_swarm_defaults():
    p = restart_policy(TaskSpec())
    assert (p.condition, p.delay, p.max_attempts, p.window) == (
        RestartCondition.ANY,
        5 * SECOND,
        0,
        0,
    )
    p = restart_policy(TaskSpec(RestartPolicy=RestartPolicy(MaxAttempts=3)))
    assert (p.condition, p.delay, p.max_attempts) == (RestartCondition.ANY, 5 * SECOND, 3)
    p = restart_policy(TaskSpec(RestartPolicy=RestartPolicy(Delay=0)))
    assert p.delay == 0


def _task(cond=None, state=TaskState.FAILED, attempts=None, window=None, at=T0, version=0):
    svc = service(restart=RestartPolicy(Condition=cond, MaxAttempts=attempts, Window=window))
    t = task(svc, slot=1, state=state, at=at)
    t.SpecVersion = Version(Index=version)
    return t


def test_conditions():
    for state in (TaskState.FAILED, TaskState.COMPLETE, TaskState.SHUTDOWN, TaskState.REJECTED):
        assert should_restart(_task(RestartCondition.ANY, state), None)
        assert should_restart(_task(None, state), None)
        assert not should_restart(_task(RestartCondition.NONE, state), None)
    assert not should_restart(_task(RestartCondition.ON_FAILURE, TaskState.COMPLETE), None)
    assert should_restart(_task(RestartCondition.ON_FAILURE, TaskState.FAILED), None)
    assert should_restart(_task(RestartCondition.ON_FAILURE, TaskState.SHUTDOWN), None)


def test_max_attempts_without_window():
    t = _task(attempts=2)
    assert should_restart(t, None)
    assert should_restart(t, SlotRestarts(spec_version=0, total=1))
    assert not should_restart(t, SlotRestarts(spec_version=0, total=2))
    # History of another spec version does not count.
    assert should_restart(t, SlotRestarts(spec_version=5, total=2))


def test_max_attempts_within_window():
    t = _task(attempts=2, window=10 * SECOND, at=T0 + sec(20))
    rec = SlotRestarts(spec_version=0, total=5, times=[T0, T0 + sec(12), T0 + sec(15)])
    assert not should_restart(t, rec)  # 12 and 15 are within (10, 20)
    rec.times = [T0, T0 + sec(5), T0 + sec(15)]
    assert should_restart(t, rec)  # only 15 is
    # Restarts at or after the task stopped do not count against it.
    rec.times = [T0 + sec(15), T0 + sec(20), T0 + sec(25)]
    assert should_restart(t, rec)


@given(
    attempts=st.integers(min_value=1, max_value=5),
    offsets=st.lists(st.integers(min_value=-100, max_value=100), max_size=12),
    window=st.integers(min_value=1, max_value=60),
)
def test_window_counts_exactly_the_restarts_inside_it(attempts, offsets, window):
    stop = T0 + sec(100)
    t = _task(attempts=attempts, window=window * SECOND, at=stop)
    times = sorted(stop + sec(o) for o in offsets)
    inside = sum(1 for x in times if stop - sec(window) < x < stop)
    rec = SlotRestarts(spec_version=0, total=len(times), times=times)
    assert should_restart(t, rec) == (inside < attempts)


def test_history_records_only_limited_policies_and_resets_on_new_spec():
    h = RestartHistory()
    key = SlotKey("s", 1)
    h.record(key, _task(attempts=None), T0)
    assert h.get(key) is None
    h.record(key, _task(attempts=3, version=1), T0)
    h.record(key, _task(attempts=3, version=1), T0)
    assert h.get(key).total == 2 and h.get(key).times == []
    h.record(key, _task(attempts=3, version=2), T0)
    assert h.get(key).total == 1 and h.get(key).spec_version == 2
    h.clear_service("s")
    assert key not in h


def test_history_forgets_restarts_far_outside_the_window():
    h = RestartHistory()
    key = SlotKey("s", 1)
    for i in range(10):
        h.record(key, _task(attempts=3, window=10 * SECOND), T0 + sec(10 * i))
    assert all(x > T0 + sec(90 - 20) for x in h.get(key).times)
    assert h.get(key).total == 10
