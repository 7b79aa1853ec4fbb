"""Which services and components a node's manager runs: the one place that names them all."""

from shoal.manager.allocator import Allocator
from shoal.manager.dispatcher import DEFAULT_RECONNECT_GRACE, Dispatcher
from shoal.manager.logbroker import LogBroker
from shoal.manager.manager import ComponentFactory, ServicerFactory
from shoal.manager.nodeca.rotation import RootRotator
from shoal.manager.orchestrator import orchestration_components
from shoal.manager.scheduler import Scheduler


def manager_servicers(reconnect_grace: float | None = None) -> list[ServicerFactory]:
    """gRPC services a manager serves besides NodeCA. ``reconnect_grace``: seconds a node
    whose session broke has to reconnect before it is down (None: the default)."""
    grace = DEFAULT_RECONNECT_GRACE if reconnect_grace is None else reconnect_grace
    return [
        lambda m: [
            Dispatcher(m.store, m.clock, redirect=m.leader_redirect, reconnect_grace=grace),
            LogBroker(m.store, m.clock),
        ]
    ]


def manager_components() -> list[ComponentFactory]:
    """Reconcile loops that run while this manager leads (built afresh each time it becomes
    leader: they hold state)."""
    return [
        lambda m: orchestration_components(m.store, m.clock),
        lambda m: [Allocator(m.store, m.clock), Scheduler(m.store, m.clock)],
        lambda m: [RootRotator(m.store, m.clock)],
    ]
