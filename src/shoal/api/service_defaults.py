"""What Docker's daemon fills into a service spec as it converts it for swarmkit, so that a
client that leaves these out (docker-py does) reads back what Docker shows, and so that a
client comparing a spec it would send with one stored (``stack deploy``) sees them alike."""

from shoal.api.specs import ServiceSpec
from shoal.api.types import EndpointMode, FailureAction, UpdateOrder


def fill_daemon_defaults(spec: ServiceSpec) -> None:
    """An update or rollback config's failure action "pause" and order "stop-first", an
    endpoint spec's mode "vip", a container's isolation "default" (in place)."""
    container = spec.TaskTemplate.ContainerSpec
    if container is not None and container.Isolation is None:
        container.Isolation = "default"
    for cfg in (spec.UpdateConfig, spec.RollbackConfig):
        if cfg is not None:
            cfg.FailureAction = cfg.FailureAction or FailureAction.PAUSE
            cfg.Order = cfg.Order or UpdateOrder.STOP_FIRST
    if spec.EndpointSpec is not None and spec.EndpointSpec.Mode is None:
        spec.EndpointSpec.Mode = EndpointMode.VIP
