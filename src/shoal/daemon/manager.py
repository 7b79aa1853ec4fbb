"""Which services and components a node's manager runs: the one place that names them all."""

from shoal.manager.allocator import Allocator
from shoal.manager.dispatcher import Dispatcher
from shoal.manager.logbroker import LogBroker
from shoal.manager.manager import ComponentFactory, ServicerFactory
from shoal.manager.nodeca.rotation import RootRotator
from shoal.manager.orchestrator import orchestration_components
from shoal.manager.scheduler import Scheduler


def manager_servicers() -> list[ServicerFactory]:
    """gRPC services a manager serves besides NodeCA."""
    return [
        lambda m: [
            Dispatcher(m.store, m.clock, redirect=m.leader_redirect),
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
