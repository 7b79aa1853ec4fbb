"""The dispatcher: agents' sessions with the managers, heartbeats, assignments and status."""

from shoal.manager.dispatcher.dispatcher import Dispatcher
from shoal.manager.dispatcher.heartbeats import DEFAULT_RECONNECT_GRACE

__all__ = ["DEFAULT_RECONNECT_GRACE", "Dispatcher"]
