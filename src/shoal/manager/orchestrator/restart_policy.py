"""Restart policies with Swarm's defaults, and the per-slot restart history that MaxAttempts
and Window are counted against. Pure: no store, no clock."""

import datetime as dt
from dataclasses import dataclass, field

from shoal.api.objects import Task
from shoal.api.specs import SECOND, TaskSpec
from shoal.api.types import RestartCondition, TaskState
from shoal.manager.orchestrator.task import SlotKey, spec_version_index

DEFAULT_RESTART_DELAY = 5 * SECOND


@dataclass(frozen=True)
class RestartPolicy:
    """A task's restart policy with the defaults filled in. Durations in nanoseconds;
    ``max_attempts`` 0 means unlimited, ``window`` 0 means attempts are counted forever."""

    condition: RestartCondition = RestartCondition.ANY
    delay: int = DEFAULT_RESTART_DELAY
    max_attempts: int = 0
    window: int = 0

    @property
    def delay_seconds(self) -> float:
        return self.delay / SECOND


def limits_attempts(spec: TaskSpec) -> bool:
    """``restart_policy(spec).max_attempts > 0``, without building the policy: a new leader
    asks it of every task in the store."""
    p = spec.RestartPolicy
    return p is not None and (p.MaxAttempts or 0) > 0


def restart_policy(spec: TaskSpec) -> RestartPolicy:
    p = spec.RestartPolicy
    if p is None:
        return RestartPolicy()
    return RestartPolicy(
        condition=p.Condition or RestartCondition.ANY,
        delay=DEFAULT_RESTART_DELAY if p.Delay is None else max(0, p.Delay),
        max_attempts=max(0, p.MaxAttempts or 0),
        window=max(0, p.Window or 0),
    )


@dataclass
class SlotRestarts:
    """Restarts made in one slot for one version of the service spec."""

    spec_version: int | None = None
    total: int = 0
    # When each restart was made; only kept when the policy has a window.
    times: list[dt.datetime] = field(default_factory=list)


def should_restart(task: Task, record: SlotRestarts | None) -> bool:
    """Whether a stopped ``task`` gets a replacement under its restart policy, given the
    restarts already made in its slot."""
    policy = restart_policy(task.Spec)
    if policy.condition == RestartCondition.NONE:
        return False
    if policy.condition == RestartCondition.ON_FAILURE and task.Status.State == TaskState.COMPLETE:
        return False
    if policy.max_attempts == 0 or record is None:
        return True
    version = spec_version_index(task.SpecVersion)
    if version is not None and version != record.spec_version:
        # Failures of an earlier spec do not count against this one.
        return True
    if policy.window == 0:
        return record.total < policy.max_attempts
    # Count the restarts made within Window before this task stopped.
    stopped_at = task.Status.Timestamp
    lookback = stopped_at - dt.timedelta(microseconds=policy.window // 1000)
    in_window = sum(1 for t in record.times if lookback < t < stopped_at)
    return in_window < policy.max_attempts


class RestartHistory:
    """Restarts made per slot (per node for global services), so MaxAttempts can be enforced.
    Only slots whose policy limits attempts are tracked."""

    def __init__(self) -> None:
        self._by_service: dict[str, dict[SlotKey, SlotRestarts]] = {}

    def get(self, key: SlotKey) -> SlotRestarts | None:
        return self._by_service.get(key.service_id, {}).get(key)

    def record(self, key: SlotKey, replacement: Task, at: dt.datetime) -> None:
        """Count ``replacement`` (made at ``at``) as a restart in ``key``."""
        policy = restart_policy(replacement.Spec)
        if policy.max_attempts == 0:
            return
        slots = self._by_service.setdefault(key.service_id, {})
        rec = slots.setdefault(key, SlotRestarts())
        version = spec_version_index(replacement.SpecVersion)
        if version is not None and version != rec.spec_version:
            # The service changed: its past failures do not count against the new spec.
            rec = slots[key] = SlotRestarts(spec_version=version)
        rec.total += 1
        if policy.window:
            rec.times.append(at)
            # Forget restarts far outside any window we could still be asked about.
            horizon = at - 2 * dt.timedelta(microseconds=policy.window // 1000)
            rec.times = [t for t in rec.times if t > horizon]

    def clear_service(self, service_id: str) -> None:
        self._by_service.pop(service_id, None)

    def __contains__(self, key: SlotKey) -> bool:
        return self.get(key) is not None
