"""The dispatcher: agents' sessions with the managers, heartbeats, assignments and status."""

from shoal.manager.dispatcher.dispatcher import Dispatcher

__all__ = ["Dispatcher"]
