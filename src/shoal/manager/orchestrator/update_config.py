"""Update and rollback configs with Swarm's defaults filled in."""

from dataclasses import dataclass

from shoal.api.specs import SECOND, ServiceSpec
from shoal.api.types import FailureAction, UpdateOrder

DEFAULT_MONITOR = 5 * SECOND


@dataclass(frozen=True)
class UpdateSettings:
    """``parallelism`` 0 means all slots at once; durations in nanoseconds."""

    parallelism: int = 1
    delay: int = 0
    failure_action: FailureAction = FailureAction.PAUSE
    monitor: int = DEFAULT_MONITOR
    max_failure_ratio: float = 0.0
    order: UpdateOrder = UpdateOrder.STOP_FIRST

    @property
    def delay_seconds(self) -> float:
        return self.delay / SECOND

    @property
    def monitor_seconds(self) -> float:
        return self.monitor / SECOND

    @property
    def start_first(self) -> bool:
        return self.order == UpdateOrder.START_FIRST

    def workers(self, dirty_slots: int) -> int:
        return self.parallelism if self.parallelism > 0 else max(1, dirty_slots)

    def final_monitor_seconds(self) -> float:
        """How long to watch for failures after the last slot. At least a second longer
        than the delay, or tasks still in their delay would slip through."""
        if self.delay >= self.monitor:
            return (self.delay + SECOND) / SECOND
        return self.monitor_seconds


def update_settings(spec: ServiceSpec, *, rollback: bool) -> UpdateSettings:
    cfg = spec.RollbackConfig if rollback else spec.UpdateConfig
    if cfg is None:
        return UpdateSettings()
    return UpdateSettings(
        parallelism=max(0, cfg.Parallelism),
        delay=max(0, cfg.Delay or 0),
        failure_action=cfg.FailureAction or FailureAction.PAUSE,
        monitor=DEFAULT_MONITOR if cfg.Monitor is None else max(0, cfg.Monitor),
        max_failure_ratio=cfg.MaxFailureRatio or 0.0,
        order=cfg.Order or UpdateOrder.STOP_FIRST,
    )
