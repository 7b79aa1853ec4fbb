"""Swarm's defaults, filled into a service spec when a client asks for them
(``GET /services/{id}?insertDefaults=true``, which ``service inspect`` uses)."""

from shoal.api.objects import Service
from shoal.api.specs import SECOND, RestartPolicy, UpdateConfig
from shoal.api.types import FailureAction, RestartCondition, UpdateOrder

DEFAULT_STOP_GRACE_PERIOD = 10 * SECOND
DEFAULT_RESTART_DELAY = 5 * SECOND
DEFAULT_MONITOR = 5 * SECOND


def default_update_config() -> UpdateConfig:
    return UpdateConfig(
        Parallelism=1,
        FailureAction=FailureAction.PAUSE,
        Monitor=DEFAULT_MONITOR,
        MaxFailureRatio=0,
        Order=UpdateOrder.STOP_FIRST,
    )


def _fill_update(cfg: UpdateConfig | None) -> UpdateConfig:
    base = default_update_config()
    if cfg is None:
        return base
    out = cfg.clone()
    if out.FailureAction is None:
        out.FailureAction = base.FailureAction
    if out.Monitor is None:
        out.Monitor = base.Monitor
    if out.Order is None:
        out.Order = base.Order
    return out


def with_defaults(service: Service) -> Service:
    svc = service.clone()
    task = svc.Spec.TaskTemplate
    if task.ContainerSpec is not None and task.ContainerSpec.StopGracePeriod is None:
        task.ContainerSpec.StopGracePeriod = DEFAULT_STOP_GRACE_PERIOD
    rp = task.RestartPolicy or RestartPolicy()
    if rp.Condition is None:
        rp.Condition = RestartCondition.ANY
    if rp.Delay is None:
        rp.Delay = DEFAULT_RESTART_DELAY
    if rp.MaxAttempts is None:
        rp.MaxAttempts = 0
    task.RestartPolicy = rp
    svc.Spec.UpdateConfig = _fill_update(svc.Spec.UpdateConfig)
    svc.Spec.RollbackConfig = _fill_update(svc.Spec.RollbackConfig)
    return svc
